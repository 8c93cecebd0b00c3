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
)

// trustFixture is a configuration whose every trusted path lies in a fresh
// directory, loaded from a file as the agent's run does.
type trustFixture struct {
	dir, config, data, cache, creds, key, token, module string
}

func newTrustFixture(t *testing.T) *trustFixture {
	t.Helper()
	d := t.TempDir()
	f := &trustFixture{dir: d, config: filepath.Join(d, "agent.hcl"), data: filepath.Join(d, "data"), cache: filepath.Join(d, "cache"),
		creds: filepath.Join(d, "agent.creds"), key: filepath.Join(d, "key.pem"), token: filepath.Join(d, "http.token"), module: filepath.Join(d, "p.wasm")}
	for _, p := range []string{f.creds, f.key, f.token, f.module} {
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
  tls { key_file = "` + f.key + `" }
}
http {
  listen     = "127.0.0.1:0"
  token_file = "` + f.token + `"
}
plugin "p" { module = "p.wasm" }
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
		{"a directory above the data dir writable by everyone, not sticky", func(t *testing.T, f *trustFixture) string {
			chmod(t, f.dir, 0o777)
			return f.dir
		}, []string{"agent: config file ", "the directory " + "DIR" + " above it is writable by every user", "fix: chmod go-w DIR"}},
		{"compile cache owned by another user", func(t *testing.T, f *trustFixture) string {
			if os.Getuid() != 0 {
				t.Skip("giving a directory to another user needs root; this test runs as uid", os.Getuid())
			}
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
	chmod(t, f.creds, 0o604)
	chmod(t, f.module, 0o666)
	err, logs := f.check(t)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`level=WARN msg="NATS creds file is readable by every user (mode 0604)" path=` + f.creds + ` fix="chmod o-r ` + f.creds + `"`,
		`level=WARN msg="plugin module without a sha256 pin can be changed by others`,
		`fix="chmod go-w ` + f.module,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
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
