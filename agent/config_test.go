package agent

import (
	"errors"
	"maps"
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/plugins/host"
)

func TestExampleConfigParses(t *testing.T) {
	cfg, err := Load("../agent.hcl.example")
	if err != nil {
		t.Fatalf("agent.hcl.example: %v", err)
	}
	if len(cfg.Watches) != 1 || len(cfg.Plugins) != 1 {
		t.Fatalf("watches %d plugins %d, want 1 and 1", len(cfg.Watches), len(cfg.Plugins))
	}
	w := cfg.Watches[0]
	if w.Fold != FoldMemory {
		t.Errorf("fold = %q", w.Fold)
	}
	if w.Batch.Window != 0 || w.Batch.Max != 1000 || w.Wait != nil {
		t.Errorf("batch = %+v", w.Batch)
	}
	if h := w.Hooks[0]; h.Timeout != 10*time.Second || h.OnFailure != FailRetry || len(h.Check) != 2 {
		t.Errorf("hook = %+v", h)
	}
	if p := cfg.Plugins[0]; p.Memory != 64<<20 || p.Timeout != 5*time.Second || !maps.Equal(p.ConfigMap, map[string]string{"path": "upstreams.conf", "prefix": "upstream."}) {
		t.Errorf("plugin = memory %d timeout %v config %v", p.Memory, p.Timeout, p.ConfigMap)
	}
	if w.Outputs[0].Mode != 0o644 {
		t.Errorf("mode = %v", w.Outputs[0].Mode)
	}
}

// TestExampleConfigUsesTheUnitsDirectories: the packaged configuration
// (agent.hcl.example) names the directories the unit gives the service, so
// that "slipagent plugin compile -config" run outside the service (no
// $CACHE_DIRECTORY) fills the cache the service reads.
func TestExampleConfigUsesTheUnitsDirectories(t *testing.T) {
	t.Setenv("CACHE_DIRECTORY", "")
	cfg, err := Load("../agent.hcl.example")
	if err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile("../contrib/slipagent.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct{ setting, base, got string }{
		{"StateDirectory=", "/var/lib/", cfg.DataDir},
		{"CacheDirectory=", "/var/cache/", cfg.CacheDir},
	} {
		want := ""
		for _, line := range strings.Split(string(unit), "\n") {
			if name, ok := strings.CutPrefix(line, d.setting); ok {
				want = d.base + name
			}
		}
		if d.got != want {
			t.Errorf("the unit's %s is %q; agent.hcl.example's is %s", d.setting, want, d.got)
		}
	}
}

func TestDefaultsAndRelativePaths(t *testing.T) {
	src := `
data_dir = "state"
plugin "p" { module = "p.wasm" }
watch "w" {
  bucket = "b"
  plugin = "p"
  output "o" { dir = "out" }
  hook "h" { command = ["true"] }
}`
	cfg, err := Parse("/etc/slipagent/agent.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/etc/slipagent/state" || cfg.Plugins[0].Module != "/etc/slipagent/p.wasm" || cfg.Watches[0].Outputs[0].Dir != "/etc/slipagent/out" {
		t.Errorf("paths not resolved against the file: data_dir %q module %q dir %q", cfg.DataDir, cfg.Plugins[0].Module, cfg.Watches[0].Outputs[0].Dir)
	}
	// A file named relative to the working directory: the same paths,
	// absolute, the NATS client's files too.
	wd := t.TempDir()
	t.Chdir(wd)
	t.Setenv("CACHE_DIRECTORY", "")
	paths := func(c *Config) []string {
		return []string{c.DataDir, c.CacheDir, c.Plugins[0].Module, c.Watches[0].Outputs[0].Dir, c.NATS.CredsFile, c.NATS.TLS.CAFile, c.NATS.TLS.CertFile, c.NATS.TLS.KeyFile}
	}
	withNATS := src + `
nats {
  creds_file = "nats/agent.creds"
  tls {
    ca_file   = "nats/ca.pem"
    cert_file = "nats/cert.pem"
    key_file  = "nats/key.pem"
  }
}`
	var got [][]string
	for _, name := range []string{"conf/agent.hcl", "./conf/../conf/agent.hcl", filepath.Join(wd, "conf/agent.hcl")} {
		cfg, err := Parse(name, []byte(withNATS))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, paths(cfg))
	}
	want := []string{"state", "state/cache", "p.wasm", "out", "nats/agent.creds", "nats/ca.pem", "nats/cert.pem", "nats/key.pem"}
	for i := range want {
		want[i] = filepath.Join(wd, "conf", want[i])
	}
	for i, g := range got {
		if !slices.Equal(g, want) {
			t.Errorf("spelling %d: paths %q, want %q", i, g, want)
		}
	}
	w := cfg.Watches[0]
	if w.Prefixes != nil || w.Batch.Window != 0 || w.Batch.Max != DefaultBatchMax {
		t.Errorf("watch defaults: prefixes %v batch %+v", w.Prefixes, w.Batch)
	}
	if cfg.NATS.Servers[0] != DefaultNATSURL || cfg.NATS.Timeout != DefaultNATSTimeout {
		t.Errorf("nats defaults: %+v", cfg.NATS)
	}
	if len(cfg.Plugins[0].ConfigMap) != 0 || cfg.Watches[0].Fold != FoldMemory || cfg.Watches[0].Hooks[0].Timeout != DefaultHookTimeout {
		t.Errorf("plugin config %v fold %q hook timeout %v", cfg.Plugins[0].ConfigMap, cfg.Watches[0].Fold, cfg.Watches[0].Hooks[0].Timeout)
	}
}

// TestPluginLimits: a plugin's limits and render time limit are settable
// (numbers, or sizes with units) and default to values that fit a render of
// a million-key bucket (issue 7).
func TestPluginLimits(t *testing.T) {
	cfg, err := Parse("a.hcl", []byte(`
plugin "set" {
  module         = "p.wasm"
  render_timeout = "30m"
  limits {
    max_files     = 5000000
    max_bytes     = "8GiB"
    max_file_size = 1048576
  }
}
plugin "unset" { module = "p.wasm" }
`))
	if err != nil {
		t.Fatal(err)
	}
	set, unset := cfg.Plugins[0], cfg.Plugins[1]
	if l := set.Limits; set.RenderTimeout != 30*time.Minute || l.MaxFiles != 5_000_000 || l.MaxBytes != 8<<30 || l.MaxFileSize != 1<<20 {
		t.Errorf("set: render_timeout %v limits %+v", set.RenderTimeout, *l)
	}
	if l := unset.Limits; unset.RenderTimeout != DefaultRenderTimeout || l.MaxFiles != DefaultMaxFiles || l.MaxBytes != DefaultMaxBytes || l.MaxFileSize != DefaultMaxFileSize {
		t.Errorf("unset: render_timeout %v limits %+v", unset.RenderTimeout, *l)
	}
	if DefaultMaxFiles < 2_000_000 {
		t.Errorf("DefaultMaxFiles %d does not fit a render of a million-key bucket with room to spare", DefaultMaxFiles)
	}
}

func TestPluginConfigFlattensNonStrings(t *testing.T) {
	cfg, err := Parse("a.hcl", []byte(`plugin "p" {
  module = "p.wasm"
  config = { name = "x", port = 8080, tags = ["a", "b"], strict = true }
}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"name": "x", "port": "8080", "tags": `["a","b"]`, "strict": "true"}
	if got := cfg.Plugins[0].ConfigMap; !maps.Equal(got, want) {
		t.Errorf("config = %v, want %v", got, want)
	}
}

func TestEnvFunction(t *testing.T) {
	t.Setenv("SLIPAGENT_TEST_CREDS", "c2VjcmV0")
	cfg, err := Parse("a.hcl", []byte(`nats { creds = env("SLIPAGENT_TEST_CREDS") }`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NATS.Creds != "c2VjcmV0" {
		t.Errorf("creds = %q", cfg.NATS.Creds)
	}
}

func TestConfigErrors(t *testing.T) {
	const base = `plugin "p" { module = "p.wasm" }` + "\n"
	tests := []struct {
		name, src, want string
	}{
		{"typo", base + `watch "w" {
  buckett = "b"
  plugin = "p"
}`, `Did you mean "bucket"?`},
		{"unknown plugin", base + `watch "w" {
  bucket = "b"
  plugin = "q"
}`, `No plugin block is named "q"`},
		{"empty prefixes", base + `watch "w" {
  bucket = "b"
  prefixes = []
  plugin = "p"
}`, "prefixes lists no prefix"},
		{"duration without unit", base + `watch "w" {
  bucket = "b"
  plugin = "p"
  batch { window = 5 }
}`, `"5" is not a positive duration`},
		{"bad size", `plugin "p" {
  module = "p.wasm"
  memory = "lots"
}`, `"lots" is not a size`},
		{"bad max_files", `plugin "p" {
  module = "p.wasm"
  limits { max_files = -1 }
}`, `"-1" is not a positive number of files`},
		{"bad max_bytes", `plugin "p" {
  module = "p.wasm"
  limits { max_bytes = "much" }
}`, `"much" is not a size`},
		{"bad render_timeout", `plugin "p" {
  module = "p.wasm"
  render_timeout = "forever"
}`, `"forever" is not a positive duration`},
		{"bad mode", base + `watch "w" {
  bucket = "b"
  plugin = "p"
  output "o" {
    dir = "/x"
    mode = "0999"
  }
}`, `"0999" is not an octal file mode`},
		{"duplicate hook", base + `watch "w" {
  bucket = "b"
  plugin = "p"
  hook "h" { command = ["a"] }
  hook "h" { command = ["b"] }
}`, `already has a hook named "h"`},
		{"string command", base + `watch "w" {
  bucket = "b"
  plugin = "p"
  hook "h" { command = "systemctl reload nginx" }
}`, "list of string required"},
		{"bad on_failure", base + `watch "w" {
  bucket = "b"
  plugin = "p"
  hook "h" {
    command = ["a"]
    on_failure = "explode"
  }
}`, "on_failure is"},
		{"bad sha", `plugin "p" {
  module = "p.wasm"
  sha256 = "abc"
}`, "64 lowercase hex"},
		{"bad bucket", base + `watch "w" {
  bucket = "a.b"
  plugin = "p"
}`, "Invalid bucket name"},
		{"bad level", `log_level = "loud"`, "log_level is"},
		{"bad prefix", base + `watch "w" {
  bucket = "b"
  prefixes = ["a b"]
  plugin = "p"
}`, `"a b" is not a key prefix`},
		{"overlapping outputs", base + `watch "a" {
  bucket = "b"
  plugin = "p"
  output "o" { dir = "/srv/out" }
}
watch "b" {
  bucket = "b"
  plugin = "p"
  output "o" { dir = "/srv/out/sub/" }
}`, "Overlapping output directories"},
		{"bad fold", base + `watch "w" {
  bucket = "b"
  plugin = "p"
  fold = "cloud"
}`, `fold is "memory"`},
		{"unknown output owner", base + `watch "w" {
  bucket = "b"
  plugin = "p"
  output "o" {
    dir   = "/x"
    owner = "slipagent-no-such-user"
  }
}`, `Unknown output owner; output "o" of watch "w": owner = "slipagent-no-such-user": user: unknown user slipagent-no-such-user`},
		{"unknown output group", base + `watch "w" {
  bucket = "b"
  plugin = "p"
  output "o" {
    dir   = "/x"
    group = "slipagent-no-such-group"
  }
}`, `Unknown output group; output "o" of watch "w": group = "slipagent-no-such-group": group: unknown group slipagent-no-such-group`},
		{"config not an object", `plugin "p" {
  module = "p.wasm"
  config = ["a"]
}`, "config must be an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("bad.hcl", []byte(tt.src))
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *ConfigError", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "bad.hcl:") {
				t.Errorf("err = %v, want a file position", err)
			}
		})
	}
}

func TestLoadMergesDirectory(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("00-base.hcl", `plugin "p" { module = "/p.wasm" }`)
	write("10-a.hcl", `watch "a" {
  bucket = "a"
  plugin = "p"
}`)
	write("20-b.hcl", `watch "b" {
  bucket = "b"
  plugin = "p"
}`)
	write("README", "not hcl")
	cfg, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Watches) != 2 || cfg.Watches[0].Name != "a" || cfg.Watches[1].Name != "b" {
		t.Errorf("watches = %+v, want a then b", cfg.Watches)
	}
	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no *.hcl files") {
		t.Errorf("empty dir: err = %v", err)
	}
}

func TestBatchWindowAndWait(t *testing.T) {
	parse := func(batch string) (*WatchConf, error) {
		cfg, err := Parse("agent.hcl", []byte(`
plugin "p" { module = "/p.wasm" }
watch "w" {
  bucket = "b"
  plugin = "p"
  `+batch+`
  output "o" { dir = "/out" }
}`))
		if err != nil {
			return nil, err
		}
		return cfg.Watches[0], nil
	}
	w, err := parse(`batch { window = "50ms" }`)
	if err != nil || w.Batch.Window != 50*time.Millisecond {
		t.Errorf("window: %+v, %v", w, err)
	}
	w, err = parse(`batch { window = "0" }`)
	if err != nil || w.Batch.Window != 0 {
		t.Errorf("window 0: %+v, %v", w, err)
	}
	w, err = parse(`wait { min = "2s" }`)
	if err != nil || w.Wait.Min != 2*time.Second || w.Wait.Max != 8*time.Second {
		t.Errorf("wait: %+v, %v", w.Wait, err)
	}
	if _, err := parse(`wait {
    min = "2s"
    max = "1s"
  }`); err == nil || !strings.Contains(err.Error(), "shorter than min") {
		t.Errorf("wait max < min: %v", err)
	}
	if _, err := parse(`batch { window = "1s" }
  wait { min = "2s" }`); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("window and wait: %v", err)
	}
}

func TestCacheDir(t *testing.T) {
	parse := func(src string) *Config {
		t.Helper()
		cfg, err := Parse("/etc/slipagent/agent.hcl", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	t.Setenv("CACHE_DIRECTORY", "")
	if got := parse(`data_dir = "/d"`).CacheDir; got != "/d/cache" {
		t.Errorf("default cache_dir %q, want /d/cache", got)
	}
	if got := parse(`cache_dir = "cache"`).CacheDir; got != "/etc/slipagent/cache" {
		t.Errorf("relative cache_dir %q, want it resolved against the file", got)
	}
	t.Setenv("CACHE_DIRECTORY", "/var/cache/slipagent:/var/cache/other")
	if got := parse(`data_dir = "/d"`).CacheDir; got != "/var/cache/slipagent" {
		t.Errorf("cache_dir under systemd %q, want $CACHE_DIRECTORY's first entry", got)
	}
	if got := parse(`cache_dir = "/c"`).CacheDir; got != "/c" {
		t.Errorf("explicit cache_dir %q, want /c", got)
	}
}

// TestOutputOwnerResolvedAtLoad: an output's owner and group (names or
// numeric ids) are resolved when the configuration loads: an owner alone
// brings its primary group, a group alone keeps the agent's user.
func TestOutputOwnerResolvedAtLoad(t *testing.T) {
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	for _, tc := range []struct {
		name, set string
		want      *host.Owner
	}{
		{"neither", ``, nil},
		{"owner by name", `owner = "nobody"`, &host.Owner{UID: uid, GID: gid}},
		{"owner by id", `owner = "` + nobody.Uid + `"`, &host.Owner{UID: uid, GID: gid}},
		{"group alone", `group = "` + nobody.Gid + `"`, &host.Owner{UID: os.Getuid(), GID: gid}},
		{"both", `owner = "nobody"
    group = "0"`, &host.Owner{UID: uid, GID: 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("agent.hcl", []byte(`plugin "p" { module = "/p.wasm" }
watch "w" {
  bucket = "b"
  plugin = "p"
  output "o" {
    dir = "/srv/out"
    `+tc.set+`
  }
}`))
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Watches[0].Outputs[0].FileOwner; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("FileOwner = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// A watch or an output declared twice is one error: the copy's outputs
// overlap the first's, which is not a second mistake to report.
func TestDuplicateBlocksAreOneError(t *testing.T) {
	const base = `plugin "p" { module = "p.wasm" }` + "\n"
	for name, tc := range map[string]struct{ src, want string }{
		"watch": {base + `watch "w" {
  bucket = "b"
  plugin = "p"
  output "o" { dir = "/srv/out" }
}
watch "w" {
  bucket = "b"
  plugin = "p"
  output "o" { dir = "/srv/out" }
}`, "Duplicate watch"},
		"output": {base + `watch "w" {
  bucket = "b"
  plugin = "p"
  output "o" { dir = "/srv/out" }
  output "o" { dir = "/srv/out" }
}`, "Duplicate output"},
	} {
		_, err := Parse("agent.hcl", []byte(tc.src))
		var ce *ConfigError
		if !errors.As(err, &ce) || len(ce.Diags) != 1 || ce.Diags[0].Summary != tc.want {
			t.Errorf("%s declared twice: %v, want only %q", name, err, tc.want)
		}
	}
	// The copy's other places are still checked: here it overlaps another
	// watch's output.
	_, err := Parse("agent.hcl", []byte(base+`watch "w" {
  bucket = "b"
  plugin = "p"
  output "o" { dir = "/srv/out" }
}
watch "x" {
  bucket = "b"
  plugin = "p"
  output "o" { dir = "/srv/other" }
}
watch "w" {
  bucket = "b"
  plugin = "p"
  output "o" { dir = "/srv/other/sub" }
}`))
	var ce *ConfigError
	if !errors.As(err, &ce) || len(ce.Diags) != 2 || ce.Diags[0].Summary != "Duplicate watch" || ce.Diags[1].Summary != "Overlapping output directories" || !strings.Contains(ce.Diags[1].Detail, `the output "o" in agent.hcl:10`) {
		t.Errorf("a duplicate watch overlapping another's output: %v, want the duplicate and that overlap", err)
	}
}
