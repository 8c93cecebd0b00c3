package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/natstest"
)

// TestNATSServersConfig: the nats servers are checked when the
// configuration is loaded, as nats.go reads them. Every URL form nats.go
// dials is accepted; a URL no connection could use, an empty URL and an
// empty list are configuration errors naming the file, the line, the
// setting and the URL, not servers to wait for. Without the attribute the
// agent connects to the default server.
func TestNATSServersConfig(t *testing.T) {
	for _, servers := range []string{
		`["nats://n1:4222", "nats://n2:4222"]`,
		`["tls://n1.example:4443"]`,
		`["nats://user:pass@n1"]`,
		`["n1:4222", "127.0.0.1"]`,
		`["wss://n1/nats"]`,
		`["nats://n1:4222,nats://n2:4222"]`,
	} {
		if _, err := Parse("/etc/slipagent/agent.hcl", []byte("nats {\n  servers = "+servers+"\n}\n")); err != nil {
			t.Errorf("servers = %s: %v", servers, err)
		}
	}
	cfg, err := Parse("/etc/slipagent/agent.hcl", []byte("nats {}\n"))
	if err != nil || !slices.Equal(cfg.NATS.Servers, []string{DefaultNATSURL}) {
		t.Errorf("servers left out: %v, %v; want %s", err, cfg, DefaultNATSURL)
	}

	for _, tc := range []struct{ servers, want string }{
		{`["htp:/bad url"]`, `nats servers: "htp:/bad url": a path`},
		{`["htp://n1:4222"]`, `nats servers: "htp://n1:4222": scheme "htp" is not nats, tls, ws or wss`},
		{`["nats://127.0.0.1:99999"]`, `nats servers: "nats://127.0.0.1:99999": port 99999 is not between 1 and 65535`},
		{`[""]`, `nats servers: "": it names no server`},
		{`["nats://n1:4222", "ws://n2:8080"]`, `cannot be mixed`},
		{`["nats://agent:secret@n1:99999"]`, `nats servers: "nats://agent:xxxxx@n1:99999"`},
		{`["nats://t0ksecret@n1:99999"]`, `nats servers: "nats://xxxxx@n1:99999"`},
		{`["agent:secret@n1:99999"]`, `nats servers: "[redacted]@n1:99999"`},
		{`["nats://n0:1,nats://agent:secret@n1:99999"]`, `nats servers: "nats://agent:xxxxx@n1:99999"`},
		{`["nats://agent:secret1@n1", "nats://agent:secret2@n2"]`, `nats servers: "nats://agent:xxxxx@n2": its user information differs`},
		{`[]`, `nats servers lists no server`},
	} {
		_, err := Parse("/etc/slipagent/agent.hcl", []byte("data_dir = \"/tmp\"\nnats {\n  servers = "+tc.servers+"\n}\n"))
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "/etc/slipagent/agent.hcl:3,") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("servers = %s: %v; want a configuration error at agent.hcl:3 saying %q", tc.servers, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("servers = %s: %v shows the password", tc.servers, err)
		}
		if ce == nil {
			continue
		}
		// The rendered diagnostic quotes the line, with the secret masked.
		var out strings.Builder
		if err := ce.Render(&out); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.String(), "secret") || !strings.Contains(out.String(), "servers = [") {
			t.Errorf("servers = %s: rendered as\n%s\nwant the line quoted, without the secret", tc.servers, out.String())
		}
	}
	if got := string(maskUserinfo([]byte(`servers = ["nats://a:pw@h", "tok@h2", "b:pw2@h3", "nats://h4"] # not@here`))); got != `servers = ["nats://xxxx@h", "xxx@h2", "xxxxx@h3", "nats://h4"] # not@here` {
		t.Errorf("maskUserinfo = %s", got)
	}
	// Passwords holding what ends a URL elsewhere: the malformed URLs a
	// diagnostic quotes.
	for _, server := range []string{`nats://agent:p@ssword@n1:99999`, `nats://agent:pass/word@n1:99999`, `nats://agent:pass,word@n1:99999`, `nats://agent:pass word@n1:99999`, `nats://agent:pa\"ss@n1:99999`} {
		src := "servers = [\"" + server + "\"]\n"
		got := string(maskUserinfo([]byte(src)))
		if len(got) != len(src) || strings.Contains(got, "ss") || !strings.Contains(got, "@n1:99999") {
			t.Errorf("maskUserinfo(%s) = %s", src, got)
		}
	}

	// Credentials set to nothing (an unset variable) are refused.
	t.Setenv("SLIPAGENT_TEST_UNSET", "")
	for _, creds := range []string{`creds = env("SLIPAGENT_TEST_UNSET")`, `creds_file = ""`} {
		_, err := Parse("/etc/slipagent/agent.hcl", []byte("nats {\n  servers = [\"nats://n1\"]\n  "+creds+"\n}\n"))
		if err == nil || !strings.Contains(err.Error(), "agent.hcl:3,") || !strings.Contains(err.Error(), "is empty") {
			t.Errorf("%s: %v; want it refused at agent.hcl:3", creds, err)
		}
	}

	// A client certificate goes with its key.
	for _, tls := range []string{`cert_file = "c.pem"`, `key_file = "k.pem"`} {
		_, err := Parse("/etc/slipagent/agent.hcl", []byte("nats {\n  tls {\n    "+tls+"\n  }\n}\n"))
		if err == nil || !strings.Contains(err.Error(), "agent.hcl:3,") || !strings.Contains(err.Error(), "Missing nats tls") {
			t.Errorf("tls { %s }: %v; want the missing half named at agent.hcl:3", tls, err)
		}
	}
}

// TestNATSTLSFiles: the NATS client's TLS files are read as connecting
// reads them before the agent dials (CheckTLS, which validate, run, once
// and plan call): a CA file that is missing or holds no certificate, or a
// client certificate that does not load, is an error naming the setting
// and the file, not a server that cannot be reached.
func TestNATSTLSFiles(t *testing.T) {
	files := natstest.TLS(t)
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(tls string) error {
		t.Helper()
		cfg, err := Parse(filepath.Join(dir, "agent.hcl"), []byte("data_dir = \"data\"\nnats {\n  tls {\n"+tls+"\n  }\n}\n"))
		if err != nil {
			t.Fatal(err)
		}
		a, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return a.CheckTLS()
	}
	good := `ca_file = "` + files.CAFile + `"
cert_file = "` + files.ClientCertFile + `"
key_file = "` + files.ClientKeyFile + `"`
	if err := check(good); err != nil {
		t.Errorf("good TLS files: %v", err)
	}
	for _, tc := range []struct{ tls, want string }{
		{`ca_file = "/nonexistent/ca.pem"`, "agent: nats tls ca_file /nonexistent/ca.pem: no such file"},
		{`ca_file = "not.pem"`, "agent: nats tls ca_file " + notPEM + ": no PEM certificate in it"},
		{`cert_file = "not.pem"
key_file = "` + files.ClientKeyFile + `"`, "agent: nats tls cert_file " + notPEM + ", key_file " + files.ClientKeyFile + ": "},
		{`cert_file = "` + files.ClientCertFile + `"
key_file = "/nonexistent/key.pem"`, "agent: nats tls key_file /nonexistent/key.pem: no such file"},
	} {
		if err := check(tc.tls); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("tls { %s }: CheckTLS = %v; want %q", tc.tls, err, tc.want)
		}
	}
}

// TestReloadRefusesNATSFilesThatCannotWork: a reload reads the new
// configuration's NATS TLS files and credentials; one that cannot be used
// refuses the reload, loudly, and the running configuration stays. A creds
// file rewritten in place counts: the connection reads it at its next
// reconnect.
func TestReloadRefusesNATSFilesThatCannotWork(t *testing.T) {
	acc := natstest.Operator(t)
	srv := natstest.Run(t, acc.Option)
	for _, tc := range []struct {
		name string
		tls  string // the new configuration's tls block
		want string
	}{
		{"a TLS file", `  tls { ca_file = "/nonexistent/ca.pem" }`, "nats tls ca_file /nonexistent/ca.pem"},
		{"creds rewritten", "", "creds file: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			creds := filepath.Join(dir, "agent.creds")
			if err := os.WriteFile(creds, acc.Creds, 0o600); err != nil {
				t.Fatal(err)
			}
			src := "data_dir = \"data\"\ncache_dir = \"cache\"\n"
			nats := "nats {\n  servers = [\"" + srv.URL() + "\"]\n  creds_file = \"agent.creds\"\n"
			cfg, err := Parse(filepath.Join(dir, "agent.hcl"), []byte(src+nats+"}\n"))
			if err != nil {
				t.Fatal(err)
			}
			a, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Notify: func(string) error { return nil }})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run = %v", err)
				}
			}()
			bad, err := Parse(filepath.Join(dir, "agent.hcl"), []byte(src+nats+tc.tls+"\n}\n"))
			if err != nil {
				t.Fatal(err)
			}
			if tc.tls == "" {
				select { // Run read the file and connected
				case <-a.connected:
				case <-time.After(time.Minute):
					t.Fatal("the agent did not connect")
				}
				if err := os.WriteFile(creds, []byte("not a creds file\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			rctx, rcancel := context.WithTimeout(ctx, time.Minute)
			defer rcancel()
			err = a.Reload(rctx, bad)
			var re *RefusedError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Reload = %v; want it refused saying %q", err, tc.want)
			}
			if rs := a.ReloadStatus(); rs.Failures != 1 || !strings.Contains(rs.LastError, tc.want) {
				t.Errorf("reload status %+v; want the refusal", rs)
			}
			if a.config() != cfg {
				t.Error("the refused configuration replaced the running one")
			}
		})
	}
}
