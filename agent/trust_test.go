//go:build unix

package agent

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipstreamkv/slipstream/internal/rootonly"
)

// trustFixture is a configuration whose every trusted path lies in a fresh
// directory, loaded from a file as the agent's run does.
type trustFixture struct {
	dir, config, data, cache, creds, key, token, module string
	ca, cert, input                                     string
}

func newTrustFixture(t *testing.T) *trustFixture {
	t.Helper()
	d := t.TempDir()
	f := &trustFixture{dir: d, config: filepath.Join(d, "agent.hcl"), data: filepath.Join(d, "data"), cache: filepath.Join(d, "cache"),
		creds: filepath.Join(d, "agent.creds"), key: filepath.Join(d, "key.pem"), token: filepath.Join(d, "http.token"), module: filepath.Join(d, "p.wasm"),
		ca: filepath.Join(d, "ca.pem"), cert: filepath.Join(d, "cert.pem"), input: filepath.Join(d, "app.tmpl")}
	for _, p := range []string{f.creds, f.key, f.token, f.module, f.ca, f.cert, f.input} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{f.data, f.cache} {
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	src := `
data_dir  = "data"
cache_dir = "cache"
nats {
  creds_file = "` + f.creds + `"
  tls {
    ca_file   = "` + f.ca + `"
    cert_file = "` + f.cert + `"
    key_file  = "` + f.key + `"
  }
}
http {
  listen     = "127.0.0.1:0"
  token_file = "` + f.token + `"
}
plugin "p" {
  module = "p.wasm"
  config = { template = file("` + f.input + `") }
}
`
	if err := os.WriteFile(f.config, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// check loads the configuration and runs the agent's trust checks.
func (f *trustFixture) check(t *testing.T) (error, string) {
	t.Helper()
	cfg, err := Load(f.config)
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	a, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	err = a.CheckTrust()
	return err, logs.String()
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestTrustRefusesWhatOthersCanChange(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(t *testing.T, f *trustFixture) (path string)
		want    []string // in the error besides the path
	}{
		{"config file writable by its group", func(t *testing.T, f *trustFixture) string {
			chmod(t, f.config, 0o660)
			return f.config
		}, []string{"agent: config file ", "is writable by its group", "mode -rw-rw---- 0660", "fix: chmod g-w "}},
		{"http token file writable by its group", func(t *testing.T, f *trustFixture) string {
			chmod(t, f.token, 0o620)
			return f.token
		}, []string{"agent: http token file ", "is writable by its group", "fix: chmod g-w "}},
		{"data dir writable by everyone", func(t *testing.T, f *trustFixture) string {
			chmod(t, f.data, 0o777)
			return f.data
		}, []string{"agent: data dir ", "is writable by every user", "0777", "fix: chmod go-w "}},
		{"compile cache writable by its group", func(t *testing.T, f *trustFixture) string {
			chmod(t, f.cache, 0o770)
			return f.cache
		}, []string{"agent: compile cache ", "is writable by its group", "0770", "fix: chmod g-w "}},
		{"creds file writable by everyone", func(t *testing.T, f *trustFixture) string {
			chmod(t, f.creds, 0o606)
			return f.creds
		}, []string{"agent: NATS creds file ", "is writable by every user", "fix: chmod go-w "}},
		{"TLS key writable by its group", func(t *testing.T, f *trustFixture) string {
			chmod(t, f.key, 0o620)
			return f.key
		}, []string{"agent: NATS TLS key file ", "is writable by its group"}},
		{"a template read with file() writable by everyone", func(t *testing.T, f *trustFixture) string {
			chmod(t, f.input, 0o666)
			return f.input
		}, []string{"agent: config input file ", "is writable by every user", "fix: chmod go-w "}},
		{"a template read with templatefile() writable by its group", func(t *testing.T, f *trustFixture) string {
			src, _ := os.ReadFile(f.config)
			os.WriteFile(f.config, []byte(strings.Replace(string(src), `file("`+f.input+`")`, `templatefile("`+f.input+`", {})`, 1)), 0o600)
			chmod(t, f.input, 0o660)
			return f.input
		}, []string{"agent: config input file ", "is writable by its group"}},
		{"NATS CA file writable by everyone", func(t *testing.T, f *trustFixture) string {
			chmod(t, f.ca, 0o666)
			return f.ca
		}, []string{"agent: NATS TLS CA file ", "is writable by every user"}},
		{"NATS cert file writable by its group", func(t *testing.T, f *trustFixture) string {
			chmod(t, f.cert, 0o660)
			return f.cert
		}, []string{"agent: NATS TLS cert file ", "is writable by its group"}},
		{"http client CA file writable by everyone", func(t *testing.T, f *trustFixture) string {
			src, _ := os.ReadFile(f.config)
			tls := `token_file = "` + f.token + `"
  tls {
    cert_file      = "` + f.cert + `"
    key_file       = "` + f.key + `"
    client_ca_file = "` + f.ca + `"
  }`
			os.WriteFile(f.config, []byte(strings.Replace(string(src), `token_file = "`+f.token+`"`, tls, 1)), 0o600)
			chmod(t, f.ca, 0o666)
			return f.ca
		}, []string{"TLS CA file ", "is writable by every user"}},
		{"a directory above the data dir writable by everyone, not sticky", func(t *testing.T, f *trustFixture) string {
			chmod(t, f.dir, 0o777)
			return f.dir
		}, []string{"agent: config file ", "the directory " + "DIR" + " above it is writable by every user", "fix: chmod go-w DIR"}},
		{"http socket in a directory others can write", func(t *testing.T, f *trustFixture) string {
			sockDir := filepath.Join(f.dir, "run")
			if err := os.Mkdir(sockDir, 0o700); err != nil {
				t.Fatal(err)
			}
			src, _ := os.ReadFile(f.config)
			os.WriteFile(f.config, []byte(strings.Replace(string(src), `listen     = "127.0.0.1:0"`, `listen     = "unix:run/http.sock"`, 1)), 0o600)
			chmod(t, sockDir, 0o777)
			return sockDir
		}, []string{"agent: http socket directory ", "is writable by every user", "fix: chmod go-w "}},
		{"compile cache owned by another user", func(t *testing.T, f *trustFixture) string {
			rootonly.Require(t, "giving a directory to another user")
			if err := os.Chown(f.cache, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return f.cache
		}, []string{"agent: compile cache ", "is owned by uid 65534 (nobody), neither the agent's user (uid 0 (root)) nor root", "fix: chown root "}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newTrustFixture(t)
			if err, _ := f.check(t); err != nil {
				t.Fatalf("before: %v", err)
			}
			at := tc.breakIt(t, f)
			err, _ := f.check(t)
			var te *TrustError
			if !errors.As(err, &te) {
				t.Fatalf("err = %v, want a *TrustError", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, at) {
				t.Errorf("error does not name %s: %s", at, msg)
			}
			for _, w := range tc.want {
				if w = strings.ReplaceAll(w, "DIR", f.dir); !strings.Contains(msg, w) {
					t.Errorf("error lacks %q: %s", w, msg)
				}
			}
		})
	}
}

// TestTrustStickyDirectoryAbove allows a directory above writable by every
// user when it is sticky, as /tmp is: others cannot rename what they do
// not own.
func TestTrustStickyDirectoryAbove(t *testing.T) {
	f := newTrustFixture(t)
	chmod(t, f.dir, 0o777|os.ModeSticky)
	if err, _ := f.check(t); err != nil {
		t.Fatal(err)
	}
}

func TestTrustWarnings(t *testing.T) {
	f := newTrustFixture(t)
	if _, logs := f.check(t); strings.Contains(logs, "clear text") || strings.Contains(logs, "answer anyone") {
		t.Errorf("a token on 127.0.0.1 is warned about:\n%s", logs)
	}
	chmod(t, f.creds, 0o604)
	chmod(t, f.module, 0o666)
	script := filepath.Join(f.dir, "reload.sh")
	os.WriteFile(script, []byte("#!/bin/sh\n"), 0o777)
	chmod(t, script, 0o777)
	src, _ := os.ReadFile(f.config)
	src = []byte(strings.Replace(string(src), `"127.0.0.1:0"`, `"0.0.0.0:0"`, 1) + `
watch "w" {
  bucket = "b"
  plugin = "p"
  output "files" { dir = "out" }
  hook "reload" { command = ["` + script + `"] }
}
`)
	os.WriteFile(f.config, src, 0o600)
	err, logs := f.check(t)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`level=WARN msg="NATS creds file is readable by every user (mode 0604)" path=` + f.creds + ` fix="chmod o-r ` + f.creds + `"`,
		`level=WARN msg="plugin module without a sha256 pin can be changed by others`,
		`fix="chmod go-w ` + f.module,
		`level=WARN msg="the http token crosses the network in clear text`,
		`level=WARN msg="hook program can be changed by others: they could run their code as the hook's user" watch=w hook=reload problem="agent: hook program ` + script,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
}

// TestTrustWarnsOfHookScripts: a script handed to an interpreter is checked
// as a program is, and each file a hook runs is warned about once, though
// its command and check both name it.
func TestTrustWarnsOfHookScripts(t *testing.T) {
	f := newTrustFixture(t)
	script := filepath.Join(f.dir, "reload.sh")
	program := filepath.Join(f.dir, "reload")
	open := filepath.Join(f.dir, "open") // a directory, no script
	for _, p := range []string{script, program} {
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o700); err != nil {
			t.Fatal(err)
		}
		chmod(t, p, 0o777)
	}
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	chmod(t, open, 0o777)
	src, _ := os.ReadFile(f.config)
	src = append(src, `
watch "w" {
  bucket = "b"
  plugin = "p"
  output "files" { dir = "out" }
  hook "sh" {
    command = ["/bin/sh", "`+script+`", "`+open+`"]
    check   = ["/bin/sh", "-n", "`+script+`"]
  }
  hook "direct" {
    command = ["`+program+`"]
    check   = ["`+program+`", "-t"]
  }
}
`...)
	os.WriteFile(f.config, src, 0o600)
	err, logs := f.check(t)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`hook=sh problem="agent: hook script ` + script + ` is writable by every user`,
		`hook=direct problem="agent: hook program ` + program + ` is writable by every user`,
	} {
		if n := strings.Count(logs, want); n != 1 {
			t.Errorf("logs hold %s %d times, want once:\n%s", want, n, logs)
		}
	}
	if n := strings.Count(logs, "hook program can be changed by others"); n != 2 {
		t.Errorf("%d hook warnings, want 2 (neither /bin/sh nor a directory):\n%s", n, logs)
	}
}

// Endpoints beyond loopback without a token or client certificates are
// open to the network: the agent says so, and not once they have either.
func TestTrustWarnsOfOpenEndpoints(t *testing.T) {
	f := newTrustFixture(t)
	src, _ := os.ReadFile(f.config)
	open := strings.Replace(strings.Replace(string(src), `"127.0.0.1:0"`, `"0.0.0.0:0"`, 1), `token_file = "`+f.token+`"`, "", 1)
	os.WriteFile(f.config, []byte(open), 0o600)
	if _, logs := f.check(t); !strings.Contains(logs, `level=WARN msg="the http endpoints answer anyone who can reach them`) || !strings.Contains(logs, "listen=0.0.0.0:0") {
		t.Errorf("open endpoints are not warned about:\n%s", logs)
	}
	os.WriteFile(f.config, []byte(strings.Replace(string(src), `"127.0.0.1:0"`, `"0.0.0.0:0"`, 1)), 0o600)
	if _, logs := f.check(t); strings.Contains(logs, "answer anyone") {
		t.Errorf("endpoints with a token are warned about as open:\n%s", logs)
	}
}

// TestRunRefusesUntrustedDataDir: the agent does not start.
func TestRunRefusesUntrustedDataDir(t *testing.T) {
	f := newTrustFixture(t)
	chmod(t, f.data, 0o775)
	cfg, err := Load(f.config)
	if err != nil {
		t.Fatal(err)
	}
	for name, run := range map[string]func(a *Agent) error{
		"Run":  func(a *Agent) error { return a.Run(context.Background()) },
		"Plan": func(a *Agent) error { return a.Plan(context.Background(), nil, func(*WatchPlan) error { return nil }) },
	} {
		a, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		var te *TrustError
		if err := run(a); !errors.As(err, &te) || te.Path != f.data {
			t.Errorf("%s = %v, want the data dir refused", name, err)
		}
	}
}

// TestTrustConfigDirectory: a conf.d directory others can write is refused,
// and so is one of its files.
func TestTrustConfigDirectory(t *testing.T) {
	d := filepath.Join(t.TempDir(), "conf.d")
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(d, "a.hcl")
	if err := os.WriteFile(file, []byte(`data_dir = "data"`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func() error {
		cfg, err := Load(d)
		if err != nil {
			t.Fatal(err)
		}
		a, err := New(cfg, Options{PluginCacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(cfg.DataDir, 0o700)
		return a.CheckTrust()
	}
	if err := run(); err != nil {
		t.Fatal(err)
	}
	chmod(t, file, 0o620)
	if err := run(); err == nil || !strings.Contains(err.Error(), "agent: config file "+file+" is writable by its group") {
		t.Errorf("err = %v, want %s refused", err, file)
	}
	chmod(t, file, 0o600)
	chmod(t, d, 0o707)
	if err := run(); err == nil || !strings.Contains(err.Error(), "agent: config directory "+d+" is writable by every user") {
		t.Errorf("err = %v, want %s refused", err, d)
	}
}

// TestTrustChecksTheWayThroughLinks: a file or directory the agent trusts,
// reached through a symbolic link or a linked directory that lies in a
// directory others can write, is refused: they could point the link
// elsewhere. Each directory on the way is checked as it is followed.
func TestTrustChecksTheWayThroughLinks(t *testing.T) {
	kinds := []struct {
		what string
		path func(f *trustFixture) (real, inConfig string) // inConfig: the text agent.hcl names it by
	}{
		{"config file", func(f *trustFixture) (string, string) { return f.config, "" }},
		{"data dir", func(f *trustFixture) (string, string) { return f.data, `"data"` }},
		{"compile cache", func(f *trustFixture) (string, string) { return f.cache, `"cache"` }},
		{"NATS creds file", func(f *trustFixture) (string, string) { return f.creds, `"` + f.creds + `"` }},
	}
	ways := []struct {
		name string
		link func(t *testing.T, ww, real string) string // the path through ww to real
	}{
		{"a link", func(t *testing.T, ww, real string) string {
			return symlink(t, real, filepath.Join(ww, filepath.Base(real)))
		}},
		{"a linked directory", func(t *testing.T, ww, real string) string {
			return filepath.Join(symlink(t, filepath.Dir(real), filepath.Join(ww, "d")), filepath.Base(real))
		}},
	}
	for _, k := range kinds {
		for _, w := range ways {
			t.Run(k.what+" through "+w.name, func(t *testing.T) {
				f := newTrustFixture(t)
				ww := filepath.Join(t.TempDir(), "ww")
				if err := os.Mkdir(ww, 0o755); err != nil {
					t.Fatal(err)
				}
				real, inConfig := k.path(f)
				via := w.link(t, ww, real)
				if inConfig == "" {
					f.config = via
				} else {
					src, err := os.ReadFile(f.config)
					if err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(f.config, []byte(strings.Replace(string(src), inConfig, `"`+via+`"`, 1)), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				if err, _ := f.check(t); err != nil {
					t.Fatalf("through a directory only the agent's user can write: %v", err)
				}
				chmod(t, ww, 0o777)
				err, _ := f.check(t)
				var te *TrustError
				if !errors.As(err, &te) || te.What != k.what || te.Path != via || te.At != ww {
					t.Fatalf("err = %v, want the %s %s refused for %s", err, k.what, via, ww)
				}
				if want := "the directory " + ww + " above it is writable by every user"; !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q: %v", want, err)
				}
			})
		}
	}
}

// TestTrustLinkTarget: the file a link resolves to is checked, and named
// as its target.
func TestTrustLinkTarget(t *testing.T) {
	f := newTrustFixture(t)
	real := f.config
	f.config = symlink(t, real, filepath.Join(t.TempDir(), "agent.hcl"))
	chmod(t, real, 0o666)
	err, _ := f.check(t)
	if want := "agent: config file " + f.config + ": its target " + real + " is writable by every user"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want %q", err, want)
	}
}

// TestTrustStickyDirectoryLink: a link in a sticky directory others can
// write (/tmp) is trusted when the agent's user owns it: only its owner
// can replace it there.
func TestTrustStickyDirectoryLink(t *testing.T) {
	f := newTrustFixture(t)
	tmp := t.TempDir()
	chmod(t, tmp, 0o777|os.ModeSticky)
	f.config = symlink(t, f.config, filepath.Join(tmp, "agent.hcl"))
	if err, _ := f.check(t); err != nil {
		t.Fatal(err)
	}
}

// TestTrustStickyDirectoryLinkOfAnotherUser: in a sticky directory, a link
// (to the file, or to a directory on the way) another user owns is
// refused: they can replace it.
func TestTrustStickyDirectoryLinkOfAnotherUser(t *testing.T) {
	rootonly.Require(t, "giving a link to another user")
	for _, dir := range []bool{false, true} {
		f := newTrustFixture(t)
		tmp := t.TempDir()
		chmod(t, tmp, 0o777|os.ModeSticky)
		link := symlink(t, f.config, filepath.Join(tmp, "agent.hcl"))
		f.config = link
		want := "agent: config file " + link + " (a symbolic link) is owned by uid 65534"
		if dir {
			link = symlink(t, f.dir, filepath.Join(tmp, "d"))
			f.config = filepath.Join(link, "agent.hcl")
			want = "agent: config file " + f.config + ": the symbolic link " + link + " on the way to it is owned by uid 65534"
		}
		if err := os.Lchown(link, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		err, _ := f.check(t)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "fix: chown -h root "+link) {
			t.Errorf("err = %v, want %q and the fix chown -h", err, want)
		}
	}
}

func symlink(t *testing.T, target, link string) string {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	return link
}
