package natskv

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// A creds file with a valid nkey seed (its JWT is no server's): building
// options signs with the seed, as connecting does.
const testCreds = `-----BEGIN NATS USER JWT-----
eyJhbGciOiJlZDI1NTE5In0.e30.sig
------END NATS USER JWT------

-----BEGIN USER NKEY SEED-----
SUAIBDPBAUTWCWBKIO6XHQNINK5FWJW4OHLXC3HQ2KFE4PEJUA44CNHTC4
------END USER NKEY SEED------
`

func TestCredentialPriority(t *testing.T) {
	credsFile := filepath.Join(t.TempDir(), "u.creds")
	if err := os.WriteFile(credsFile, []byte(testCreds), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		opts     Options
		jwt      bool
		user     string
		password string
		token    string
	}{
		{"creds content wins", Options{Servers: []string{"nats://u:p@h:4222"}, Creds: base64Std([]byte(testCreds)), CredsFile: "/nonexistent"}, true, "", "", ""},
		{"creds file before URL user", Options{Servers: []string{"nats://u:p@h:4222"}, CredsFile: credsFile}, true, "", "", ""},
		{"URL user and password", Options{Servers: []string{"nats://u:p%40ss@h:4222"}}, false, "u", "p@ss", ""},
		{"URL user and empty password", Options{Servers: []string{"nats://u:@h:4222"}}, false, "u", "", ""},
		{"URL token", Options{Servers: []string{"nats://t0k@h:4222"}}, false, "", "", "t0k"},
		{"first URL with a user", Options{Servers: []string{"nats://h1:4222", "nats://a:b@h2:4222,nats://a:b@h3:4222"}}, false, "a", "b", ""},
		{"none", Options{Servers: []string{"nats://h:4222"}}, false, "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			no, err := tc.opts.withDefaults().natsOptions()
			if err != nil {
				t.Fatal(err)
			}
			if (no.UserJWT != nil) != tc.jwt || no.User != tc.user || no.Password != tc.password || no.Token != tc.token {
				t.Fatalf("jwt %v user %q password %q token %q", no.UserJWT != nil, no.User, no.Password, no.Token)
			}
			for _, s := range no.Servers {
				if strings.Contains(s, "@") {
					t.Fatalf("dialled URL %q keeps its user information", s)
				}
			}
		})
	}
}

// TestCheckCreds: credentials nats.go cannot read or parse are a
// *CredsError before any server is dialled, from CheckCreds and from
// building the options Connect dials with.
func TestCheckCreds(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.creds", testCreds)
	badSeed := write("bad-seed.creds", strings.Replace(testCreds, "SUAIBDPB", "SUAIBDPC", 1))
	noSeed := write("no-seed.creds", testCreds[:strings.Index(testCreds, "\n\n")+1])
	seed := testCreds[strings.Index(testCreds, "SUA"):]
	seedOnly := write("seed-only", seed[:strings.IndexByte(seed, '\n')+1])
	for _, tc := range []struct {
		name string
		opts Options
		file string // the CredsError's, "-" for none
		want string
	}{
		{"good file", Options{CredsFile: good}, "-", ""},
		{"good content", Options{Creds: base64Std([]byte(testCreds))}, "-", ""},
		{"none", Options{}, "-", ""},
		{"invalid seed", Options{CredsFile: badSeed}, badSeed, `unable to extract key pair from file "` + badSeed + `": nkeys: invalid checksum`},
		{"no seed", Options{CredsFile: noSeed}, noSeed, "no nkey seed found"},
		{"an nkey seed alone", Options{CredsFile: seedOnly}, seedOnly, seedOnly + " holds no user JWT"},
		{"missing file", Options{CredsFile: filepath.Join(dir, "nonexistent")}, filepath.Join(dir, "nonexistent"), "no such file"},
		{"content with an invalid seed", Options{Creds: base64Std([]byte(strings.Replace(testCreds, "SUAIBDPB", "SUAIBDPC", 1)))}, "", "nkeys: invalid checksum"},
		{"content not base64", Options{Creds: "%%%"}, "", "natskv: nats creds: not valid base64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.CheckCreds()
			if tc.file == "-" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ce *CredsError
			if !errors.As(err, &ce) || ce.File != tc.file || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckCreds = %v, want a *CredsError of file %q saying %q", err, tc.file, tc.want)
			}
			_, err = tc.opts.withDefaults().natsOptions()
			if !errors.As(err, &ce) || !errors.Is(err, kvcore.ErrConnectionFailed) {
				t.Fatalf("natsOptions = %v, want a *CredsError and a failed connection", err)
			}
		})
	}
}

func TestOptionsErrors(t *testing.T) {
	for name, o := range map[string]Options{
		"creds not base64":  {Creds: "%%%"},
		"creds not UTF-8":   {Creds: base64Std([]byte{0xff, 0xfe})},
		"bad URL":           {Servers: []string{"nats://[::1"}},
		"URL without host":  {Servers: []string{"nats://"}},
		"only empty URLs":   {Servers: []string{" , "}},
		"missing key file":  {CertFile: "/nonexistent/cert.pem", KeyFile: "/nonexistent/key.pem"},
		"missing CA bundle": {CAFile: "/nonexistent/ca.pem"},
	} {
		if _, err := o.withDefaults().natsOptions(); err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.Contains(err.Error(), kvcore.ErrConnectionFailed.Error()) {
			t.Errorf("%s: %v is not a connection failure", name, err)
		}
	}
}

func TestOptionsStringHidesSecrets(t *testing.T) {
	o := Options{Servers: []string{"nats://alice:s3cret@h:4222"}, Creds: "c2VjcmV0LWNyZWRz", CredsFile: "/etc/secret.creds", TLS: &tls.Config{}}
	s := o.String()
	for _, secret := range []string{"s3cret", "c2VjcmV0LWNyZWRz", "/etc/secret.creds"} {
		if strings.Contains(s, secret) {
			t.Fatalf("String() = %q shows %q", s, secret)
		}
	}
	if !strings.Contains(s, "alice") || !strings.Contains(s, "Creds:[redacted]") {
		t.Fatalf("String() = %q", s)
	}
	if o.LogValue().String() != s {
		t.Fatal("LogValue differs from String")
	}
}

// Server entries that url.Parse rejects, or parses without user
// information, still have their passwords masked, in String and in the
// errors of natsOptions.
func TestMalformedServersHideSecrets(t *testing.T) {
	for _, server := range []string{
		"nats://alice:s3cret@a:4222,nats://alice:s3cret@b:4222", // a list in one entry
		"nats://alice:s3cr%zzet@a:4222",                         // a bad escape
		"alice:s3cret@a:4222",                                   // no scheme
		"nats://alice:s3c,ret@a:4222",                           // a password cut at the comma
		"nats://alice:s3cret@[::1",                              // a bad host
	} {
		o := Options{Servers: []string{"nats://h:4222", server}}
		str := o.String()
		if strings.Contains(str, "s3c") || strings.Contains(str, "ret@") {
			t.Errorf("String shows the password of %q: %s", server, str)
		}
		if !strings.Contains(str, "nats://h:4222") {
			t.Errorf("String hides a URL without secrets: %s", str)
		}
		_, err := o.withDefaults().natsOptions()
		if err != nil && (strings.Contains(err.Error(), "s3c") || strings.Contains(err.Error(), "ret@")) {
			t.Errorf("the error about %q shows its password: %v", server, err)
		}
	}
}

// RedactServers, which the agent and the command line tools use for their
// messages, masks passwords and tokens in every form an entry may take.
func TestRedactServersHidesPasswordsAndTokens(t *testing.T) {
	got := RedactServers([]string{
		"nats://h:4222",
		"alice:s3cret@a:4222",
		"nats://h:1,nats://alice:s3cret@b:4222",
		"nats://t0ks3cret@c:4222",
		"tls://alice:s3cret@d:4222",
	})
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "nats://h:4222, ") || !strings.Contains(got, "c:4222") {
		t.Errorf("RedactServers = %q", got)
	}
}

// A URL's user information is presented to every server, so URLs that
// carry different ones are refused, naming neither password.
func TestServersWithDifferentCredentialsAreRefused(t *testing.T) {
	_, err := Options{Servers: []string{"nats://alice:pw1x@a:4222", "nats://h:4222", "nats://alice:pw2x@b:4222"}}.withDefaults().natsOptions()
	var ue *ServerURLError
	if !errors.As(err, &ue) || strings.Contains(err.Error(), "pw1x") || strings.Contains(err.Error(), "pw2x") {
		t.Fatalf("natsOptions: %v, want a *ServerURLError hiding both passwords", err)
	}
	if _, err := (Options{Servers: []string{"nats://alice:one@a:4222", "nats://alice:one@b:4222", "nats://c:4222"}}.withDefaults().natsOptions()); err != nil {
		t.Fatalf("the same credentials on two URLs: %v", err)
	}
}

// ReconnectJitter reaches nats.go for plain and TLS connections: a default,
// a setting, and none.
func TestReconnectJitter(t *testing.T) {
	for _, tc := range []struct {
		set, want time.Duration
	}{
		{0, DefaultReconnectJitter},
		{3 * time.Second, 3 * time.Second},
		{-1, 0},
	} {
		no, err := Options{ReconnectJitter: tc.set}.withDefaults().natsOptions()
		if err != nil {
			t.Fatal(err)
		}
		if no.ReconnectJitter != tc.want || no.ReconnectJitterTLS != tc.want {
			t.Errorf("ReconnectJitter %v: nats.go jitter %v (TLS %v), want %v", tc.set, no.ReconnectJitter, no.ReconnectJitterTLS, tc.want)
		}
	}
}
