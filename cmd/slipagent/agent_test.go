package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/internal/plugintest"
)

func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv(childArgsEnv); ok {
		os.Exit(runChild(args))
	}
	plugintest.Main(m)
}

func TestValidate(t *testing.T) {
	code, out, errOut := runCmd(t, "validate", "-config", "../../agent.hcl.example", "-modules=false")
	if code != exitOK || !strings.Contains(out, "ok (1 watch, 1 plugin)") {
		t.Errorf("validate example = %d %q %q", code, out, errOut)
	}

	dir := t.TempDir()
	// With the module it names built here, the example validates in full:
	// its plugin accepts the settings the example gives it.
	example, err := os.ReadFile("../../agent.hcl.example")
	if err != nil {
		t.Fatal(err)
	}
	const shipped = "/usr/lib/slipagent/plugins/nginx-upstreams.wasm"
	if !bytes.Contains(example, []byte(shipped)) {
		t.Fatalf("agent.hcl.example no longer names %s", shipped)
	}
	nginx := filepath.Join(dir, "nginx-upstreams.wasm")
	os.WriteFile(nginx, plugintest.Module(t, "plugins/examples/nginx-upstreams"), 0o644)
	full := filepath.Join(dir, "example.hcl")
	os.WriteFile(full, bytes.Replace(example, []byte(shipped), []byte(nginx), 1), 0o600)
	if code, out, errOut := runCmd(t, "validate", "-config", full); code != exitOK {
		t.Errorf("validate example with its module = %d %q %q", code, out, errOut)
	}

	bad := filepath.Join(dir, "bad.hcl")
	os.WriteFile(bad, []byte("watch \"w\" {\n  buckett = \"b\"\n  plugin = \"p\"\n}\n"), 0o644)
	code, _, errOut = runCmd(t, "validate", "-config", bad)
	if code != exitFailure || !strings.Contains(errOut, `Did you mean "bucket"?`) || !strings.Contains(errOut, "buckett = ") {
		t.Errorf("validate typo = %d, stderr:\n%s\nwant the diagnostic with its source line", code, errOut)
	}

	// Modules are loaded: a good one passes, a wrong pin fails.
	wasm := filepath.Join(dir, "files.wasm")
	os.WriteFile(wasm, plugintest.Module(t, "plugins/examples/files"), 0o644)
	cfg := filepath.Join(dir, "agent.hcl")
	os.WriteFile(cfg, []byte(`plugin "files" { module = "files.wasm" }`), 0o644)
	if code, out, errOut := runCmd(t, "validate", "-config", cfg); code != exitOK {
		t.Errorf("validate with a good module = %d %q %q", code, out, errOut)
	}
	os.WriteFile(cfg, []byte(`plugin "files" {
  module = "files.wasm"
  sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
}`), 0o644)
	if code, _, errOut := runCmd(t, "validate", "-config", cfg); code != exitFailure || !strings.Contains(errOut, "sha256") {
		t.Errorf("validate with a wrong pin = %d %q", code, errOut)
	}
}

func TestKV(t *testing.T) {
	srv := natstest.Run(t)
	kv := func(args ...string) (int, string, string) {
		return runCmd(t, append([]string{"kv", "-server", srv.URL()}, args...)...)
	}
	if code, out, errOut := kv("put", "cfg", "node.a", "1"); code != exitOK || !strings.Contains(out, "rev 1") {
		t.Fatalf("put = %d %q %q", code, out, errOut)
	}
	kv("put", "cfg", "node.b", "2")
	kv("put", "cfg", "other.c", "3")
	if code, out, _ := kv("get", "cfg", "node.a"); code != exitOK || out != "1\n" {
		t.Errorf("get = %d %q", code, out)
	}
	if code, out, _ := kv("keys", "cfg", "node."); code != exitOK || out != "node.a\nnode.b\n" {
		t.Errorf("keys = %d %q", code, out)
	}
	if code, _, _ := kv("delete", "cfg", "node.a"); code != exitOK {
		t.Errorf("delete = %d", code)
	}
	if code, _, errOut := kv("get", "cfg", "node.a"); code != exitNotFound || !strings.Contains(errOut, "not found") {
		t.Errorf("get deleted = %d %q", code, errOut)
	}
	wctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code := run(wctx, []string{"kv", "-server", srv.URL(), "watch", "cfg", "node."}, &out, &errOut)
	if code != exitOK || out.String() != "2 put node.b \"2\"\n4 delete node.a\n# caught up\n" {
		t.Errorf("watch = %d %q %q", code, out.String(), errOut.String())
	}
	if code, _, _ := kv("frobnicate", "cfg"); code != exitUsage {
		t.Errorf("unknown kv command = %d, want usage", code)
	}
	// After "--" a value that starts with "-" is the value, not a flag.
	if code, _, errOut := kv("put", "cfg", "other.neg", "--", "-5"); code != exitOK {
		t.Fatalf("put -- -5 = %d %q", code, errOut)
	}
	if code, out, _ := kv("get", "cfg", "other.neg"); code != exitOK || out != "-5\n" {
		t.Errorf("get of a value put after -- = %d %q", code, out)
	}
}

func TestStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`{"ready": false, "watches": [{"name": "routes", "bucket": "routes", "state": "failing", "revision": 42, "consecutive_failures": 3, "reason": "hook reload: exit status 1", "last_error": "hook reload: exit status 1"},
{"name": "stale", "bucket": "stale", "state": "failing", "reason": "plugin trapped (not caught up for more than stale_after, 1m0s)", "last_error": "plugin trapped"},
{"name": "certs", "bucket": "certs", "state": "held", "reason": "a batch would remove 20 of the watch's 20 keys", "held": {"keys_before": 20, "removals": 20, "since": "2026-01-01T00:00:00Z"}}]}`))
	}))
	defer srv.Close()
	code, out, _ := runCmd(t, "status", "-addr", strings.TrimPrefix(srv.URL, "http://"))
	if code != exitFailure || !strings.Contains(out, "routes") || !strings.Contains(out, "failing") || !strings.Contains(out, "hook reload: exit status 1") {
		t.Errorf("status = %d\n%s", code, out)
	}
	if !strings.Contains(out, "certs: held since 2026-01-01T00:00:00Z: 20 of 20 keys would be removed") {
		t.Errorf("status does not show the hold:\n%s", out)
	}
	if !strings.Contains(out, "certs: held: a batch would remove") {
		t.Errorf("status does not give the held watch's state and reason:\n%s", out)
	}
	if n := strings.Count(out, "hook reload: exit status 1"); n != 1 {
		t.Errorf("status shows the failing watch's error %d times, want once:\n%s", n, out)
	}
	if !strings.Contains(out, "stale: failing (not caught up for more than stale_after, 1m0s)\n") {
		t.Errorf("status does not add what the reason says beyond the error:\n%s", out)
	}
}

// TestDev runs "slipagent dev" with the example plugins until every watch
// has rendered its outputs. Dev's default ports, 4222 and 9464, are taken
// (by the test if nothing else holds them): -port 0 and -http :0 must not
// fall back to them.
func TestDev(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:4222", "127.0.0.1:9464"} {
		if l, err := net.Listen("tcp", addr); err == nil {
			t.Cleanup(func() { l.Close() })
		}
	}
	dir, plugins := t.TempDir(), t.TempDir()
	t.Setenv("CACHE_DIRECTORY", plugintest.CacheDir(t)) // compile each module once per test process
	for _, name := range []string{"nginx-upstreams", "files", "template"} {
		os.WriteFile(filepath.Join(plugins, name+".wasm"), plugintest.Module(t, "plugins/examples/"+name), 0o644)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var stdout, stderr bytes.Buffer
	go func() {
		done <- run(ctx, []string{"dev", "-dir", dir, "-plugins", plugins, "-port", "0", "-http", "127.0.0.1:0"}, &stdout, &stderr)
	}()
	outputs := []string{"out/nginx/upstreams.conf", "out/files/motd.txt", "out/template/app.conf", "out/hooks.log"}
	// The first start compiles the example plugins: minutes under -race on
	// a loaded machine.
	deadline := time.Now().Add(5 * time.Minute)
	for _, o := range outputs {
		for {
			if _, err := os.Stat(filepath.Join(dir, o)); err == nil {
				break
			}
			select {
			case code := <-done:
				cancel()
				t.Fatalf("dev exited %d before writing %s; stderr:\n%s", code, o, stderr.String())
			default:
			}
			if time.Now().After(deadline) {
				cancel()
				<-done
				t.Fatalf("dev mode did not write %s; stderr:\n%s", o, stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("dev exited %d; stderr:\n%s", code, stderr.String())
	}
	b, _ := os.ReadFile(filepath.Join(dir, "out/nginx/upstreams.conf"))
	if !strings.Contains(string(b), "server 10.0.0.1:8080 weight=3;") {
		t.Errorf("upstreams.conf:\n%s", b)
	}
	if !strings.Contains(stdout.String(), "bin/slipagent kv -server nats://127.0.0.1:") {
		t.Errorf("banner:\n%s", stdout.String())
	}
}

// TestValidateNamesPluginOnce checks that a module error names its plugin
// once: host errors already carry the name.
func TestValidateNamesPluginOnce(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bad.wasm"), []byte("\x00asm\x01\x00\x00\x00"), 0o644)
	cfg := filepath.Join(dir, "agent.hcl")
	os.WriteFile(cfg, []byte(`plugin "bad" { module = "bad.wasm" }`), 0o644)
	code, _, errOut := runCmd(t, "validate", "-config", cfg)
	if code != exitFailure || strings.Count(errOut, `plugin "bad"`) != 1 {
		t.Errorf("validate of a bad module = %d %q; want the plugin named once", code, errOut)
	}
	os.Remove(filepath.Join(dir, "bad.wasm"))
	if code, _, errOut := runCmd(t, "validate", "-config", cfg); code != exitFailure || strings.Count(errOut, `plugin "bad"`) != 1 || !strings.Contains(errOut, "bad.wasm") {
		t.Errorf("validate of a missing module = %d %q; want the plugin and the path named once", code, errOut)
	}
}

// TestValidateConfiguresPlugins: validate loads each module with its
// configuration, and a plugin that checks it when loaded (the template
// example) fails validate, naming the plugin and what the plugin says.
func TestValidateConfiguresPlugins(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "template.wasm"), plugintest.Module(t, "plugins/examples/template"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "agent.hcl")
	for _, c := range []struct{ name, config, want string }{
		{"good template", `{ template = "{{ range .Entries }}{{ .Key }}\n{{ end }}" }`, ""},
		{"template syntax", `{ template = "line 1\n{{ if }}", name = "nginx.conf.tmpl" }`, "template: nginx.conf.tmpl:2: missing value for if"},
		{"templates not JSON", `{ templates = "[{source: x}]" }`, "templates: invalid character"},
		{"no destination", `{ templates = [{ source = "x" }] }`, "templates[0] has no destination"},
	} {
		t.Run(c.name, func(t *testing.T) {
			hcl := "plugin \"tmpl\" {\n  module = \"template.wasm\"\n  config = " + c.config + "\n}\n"
			if err := os.WriteFile(cfg, []byte(hcl), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runCmd(t, "validate", "-config", cfg)
			if c.want == "" {
				if code != exitOK {
					t.Errorf("validate = %d %q %q, want ok", code, out, errOut)
				}
				return
			}
			if code != exitFailure || strings.Count(errOut, `plugin "tmpl"`) != 1 || !strings.Contains(errOut, c.want) {
				t.Errorf("validate = %d %q; want %d, the plugin named once and %q", code, errOut, exitFailure, c.want)
			}
		})
	}
}

// TestValidateFindsUndeclaredOutputsAndHooks: a hook or output named in a
// plugin's configuration but not declared by its watch passed validate, and
// the watch then failed at its first batch. validate renders an empty
// bucket with each watch's plugin and names the watch, the plugin and what
// it asked for; a plugin that writes nothing for an empty bucket, or whose
// render fails otherwise, is left to plan.
func TestValidateFindsUndeclaredOutputsAndHooks(t *testing.T) {
	dir := t.TempDir()
	for name, module := range map[string]string{"template.wasm": "plugins/examples/template", "files.wasm": "plugins/examples/files"} {
		if err := os.WriteFile(filepath.Join(dir, name), plugintest.Module(t, module), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "agent.hcl")
	for _, c := range []struct{ name, config, want string }{
		{"declared", `{ template = "x", path = "app.conf", output = "conf", hook = "reload" }`, ""},
		{"hook", `{ template = "x", path = "app.conf", output = "conf", hook = "nosuchhook" }`, `plugin "tmpl" requests hook "nosuchhook", which the watch does not declare`},
		{"output", `{ templates = [{ source = "x", destination = "a.conf", output = "tls" }], output = "conf" }`, `plugin "tmpl" writes to output "tls", which the watch does not declare`},
		{"default output", `{ template = "x", path = "app.conf", hook = "reload" }`, `plugin "tmpl" writes to output "out", which the watch does not declare`},
		{"render fails otherwise", `{ template = "{{ key \"missing\" }}", path = "app.conf", output = "conf", hook = "nosuchhook" }`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := `data_dir = "data"
plugin "tmpl" {
  module = "template.wasm"
  config = ` + c.config + `
}
plugin "files" {
  module = "files.wasm"
  config = { hook = "nosuchhook" }
}
watch "app" {
  bucket = "app"
  plugin = "tmpl"
  output "conf" { dir = "out" }
  hook "reload" { command = ["true"] }
}
watch "files" {
  bucket = "app"
  plugin = "files"
  output "files" { dir = "files" }
}
`
			if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runCmd(t, "validate", "-config", cfg)
			if c.want == "" {
				if code != exitOK {
					t.Errorf("validate = %d %q %q, want ok", code, out, errOut)
				}
				return
			}
			if code != exitFailure || !strings.Contains(errOut, cfg+`:10: watch "app": `+c.want) || strings.Contains(errOut, `watch "files"`) {
				t.Errorf("validate = %d %q; want %d and %q at the watch's line, watch files not named", code, errOut, exitFailure, c.want)
			}
		})
	}
}

// TestUnknownPluginSettingIsRefused: a misspelt key in a plugin's config
// (prefx for the files example's prefix) used to pass validate, and once
// then wrote every file with the key's prefix left in its path. validate
// now fails, naming the key, the plugin and its block's file:line, and
// once refuses to start without writing anything.
func TestUnknownPluginSettingIsRefused(t *testing.T) {
	srv := natstest.Run(t)
	dir := t.TempDir()
	cfg := onceConfig(t, dir, srv.URL(), "")
	good, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCmd(t, "validate", "-config", cfg); code != exitOK {
		t.Fatalf("validate of the good configuration = %d %q %q", code, out, errOut)
	}
	const setting = `config = { prefix = "files.", hook = "changed" }`
	if !bytes.Contains(good, []byte(setting)) {
		t.Fatalf("onceConfig no longer sets %s", setting)
	}
	bad := bytes.Replace(good, []byte("prefix ="), []byte("prefx ="), 1)
	if err := os.WriteFile(cfg, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	line := 1 + bytes.Count(bad[:bytes.Index(bad, []byte(`plugin "files" {`))], []byte("\n"))
	code, out, errOut := runCmd(t, "validate", "-config", cfg)
	for _, want := range []string{
		fmt.Sprintf("%s:%d: ", cfg, line),
		`plugin "files"`,
		`files: unknown configuration key "prefx" (did you mean "prefix"?); this plugin reads: hook, mode, output, prefix, prune, strict`,
	} {
		if code != exitFailure || !strings.Contains(errOut, want) || strings.Count(errOut, "prefx") != 1 {
			t.Errorf("validate with a misspelt prefix = %d %q %q; want %d and %q, prefx named once", code, out, errOut, exitFailure, want)
		}
	}

	kvMust(t, srv.URL())("put", "cfg", "files.a.txt", "alpha")
	code, _, errOut = runCmd(t, "once", "-config", cfg)
	if code != exitFailure || !strings.Contains(errOut, `unknown configuration key "prefx"`) {
		t.Errorf("once with a misspelt prefix = %d %q; want %d naming prefx", code, errOut, exitFailure)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "out")); len(entries) != 0 {
		t.Errorf("once with a misspelt prefix wrote %v", entries)
	}
}

// TestValidateRefusesWhatTheAgentWouldRefuse: validate runs the agent's
// trust checks, so a configuration others can change fails there rather
// than at the agent's start.
func TestValidateRefusesWhatTheAgentWouldRefuse(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(cfg, []byte("data_dir = \"data\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCmd(t, "validate", "-config", cfg); code != exitOK {
		t.Fatalf("validate of a private configuration = %d %q %q", code, out, errOut)
	}
	if err := os.Chmod(cfg, 0o666); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCmd(t, "validate", "-config", cfg)
	if code != exitFailure || !strings.Contains(errOut, cfg) || !strings.Contains(errOut, "fix: chmod go-w") {
		t.Fatalf("validate of a configuration everyone can write = %d %q; want it refused with the path and the fix", code, errOut)
	}
}

// TestValidateRefusesOutputsSharingFiles: two watches whose output
// directories are one directory through a symlink would prune each other's
// files for ever; validate says so, naming both spellings and the resolved
// directory.
func TestValidateRefusesOutputsSharingFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "out"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "agent.hcl")
	src := `data_dir = "data"
plugin "files" { module = "files.wasm" }
watch "a" {
  bucket = "a"
  plugin = "files"
  output "files" { dir = "out" }
}
watch "b" {
  bucket = "b"
  plugin = "files"
  output "files" { dir = "link" }
}
`
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCmd(t, "validate", "-config", cfg)
	if code != exitFailure || !strings.Contains(errOut, "Overlapping output directories") || !strings.Contains(errOut, filepath.Join(dir, "link")) || !strings.Contains(errOut, "once symlinks are resolved") {
		t.Fatalf("validate of outputs sharing a directory through a symlink = %d %q; want it refused naming both", code, errOut)
	}
}

// TestValidateRefusesOutputHoldingAgentFiles: an output directory that
// holds the agent's plugin module, a hook's script and the http token file
// is refused before the first full render removes them all (the agent
// would only find out at its next reload or restart).
func TestValidateRefusesOutputHoldingAgentFiles(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "outdir")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{
		"files.wasm": plugintest.Module(t, "plugins/examples/files"),
		"hook.sh":    []byte("#!/bin/sh\n"),
		"http.token": []byte("secret\n"),
	} {
		if err := os.WriteFile(filepath.Join(out, name), content, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "agent.hcl")
	src := `data_dir = "data"
plugin "files" { module = "outdir/files.wasm" }
http {
  listen     = "127.0.0.1:0"
  token_file = "outdir/http.token"
}
watch "w" {
  bucket = "b"
  plugin = "files"
  output "files" { dir = "outdir" }
  hook "reload" { command = ["` + filepath.Join(out, "hook.sh") + `"] }
}
`
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCmd(t, "validate", "-config", cfg)
	if code != exitFailure {
		t.Fatalf("validate of an output holding the agent's files = %d %q; want it refused", code, errOut)
	}
	text := strings.Join(strings.Fields(errOut), " ") // the diagnostics are wrapped
	for _, want := range []string{
		`plugin "files" module ` + filepath.Join(out, "files.wasm"),
		`watch "w" hook "reload" command ` + filepath.Join(out, "hook.sh"),
		"http token_file " + filepath.Join(out, "http.token"),
	} {
		if !strings.Contains(text, `output "files": `+out+" contains the agent's "+want) {
			t.Errorf("validate does not name %q:\n%s", want, errOut)
		}
	}
}

// TestValidateChecksHookPrograms: validate refuses a hook's command or
// check program given by path that is missing or cannot run, naming the
// hook, the setting and the path, and warns about a bare name not in PATH;
// with -modules=false (the unit's check before the agent starts, which a
// missing program does not stop) it leaves them.
func TestValidateChecksHookPrograms(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "files.wasm"), plugintest.Module(t, "plugins/examples/files"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{"check.sh": 0o755, "afile": 0o644} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "agent.hcl")
	for _, tc := range []struct {
		name, hook string
		want       []string // nil: validate says ok
	}{
		{"programs that run", `command = ["true"]
    check   = ["./check.sh"]`, nil},
		{"a missing command", `command = ["bin/missing.sh"]`,
			[]string{cfg + `:8: watch "w", hook "reload": command program: stat ` + filepath.Join(dir, "bin", "missing.sh") + ": no such file"}},
		{"a check that cannot run", `command = ["true"]
    check   = ["./afile"]`,
			[]string{cfg + `:9: watch "w", hook "reload": check program ` + filepath.Join(dir, "afile") + " is not an executable file"}},
		{"a bare name not in PATH", `command = ["slipagent-no-such-program"]`, nil},
		{"a wait as long as stale_after", `command = ["true"]
    min_interval = "2m"`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := `data_dir = "data"
plugin "files" { module = "files.wasm" }
watch "w" {
  bucket = "b"
  plugin = "files"
  output "files" { dir = "out" }
  hook "reload" {
    ` + tc.hook + `
  }
}
`
			if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			if code, out, errOut := runCmd(t, "validate", "-config", cfg, "-modules=false"); code != exitOK {
				t.Errorf("validate -modules=false = %d %q %q, want ok", code, out, errOut)
			}
			code, out, errOut := runCmd(t, "validate", "-config", cfg)
			if tc.want == nil {
				if code != exitOK {
					t.Fatalf("validate = %d %q %q, want ok", code, out, errOut)
				}
				if bare := strings.Contains(tc.hook, "no-such-program"); bare != strings.Contains(errOut, `warning: command program "slipagent-no-such-program" is not in this shell's PATH`) {
					t.Errorf("validate's warnings: %q", errOut)
				}
				if long := strings.Contains(tc.hook, "min_interval"); long != strings.Contains(errOut, `:7: watch "w", hook "reload": warning: a batch may wait up to 2m0s for this hook (splay + min_interval), not less than the watch's stale_after (2m0s)`) {
					t.Errorf("validate's warnings: %q", errOut)
				}
				return
			}
			if code != exitFailure {
				t.Fatalf("validate = %d %q %q, want %d", code, out, errOut, exitFailure)
			}
			for _, want := range tc.want {
				if !strings.Contains(errOut, want) {
					t.Errorf("validate does not say %q:\n%s", want, errOut)
				}
			}
		})
	}
}

// TestValidateRefusesWhatTheAgentCannotStart: validate refuses what the
// agent would refuse at once or could never apply (an output owner that
// does not exist, an http token or TLS file it cannot read, a data_dir that
// is a file), naming the setting and the path, with exit 1.
func TestValidateRefusesWhatTheAgentCannotStart(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"afile": "x\n", "empty.token": "\n", "http.token": "secret\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "agent.hcl")
	const watch = `plugin "files" { module = "files.wasm" }
watch "w" {
  bucket = "b"
  plugin = "files"
  output "files" {
    dir   = "out"
    $SET
  }
}
`
	for _, tc := range []struct {
		name, src string
		want      []string // nil: validate says ok
	}{
		{"a token file", `data_dir = "data"
http {
  listen     = "127.0.0.1:0"
  token_file = "http.token"
}`, nil},
		{"an unknown output owner", `data_dir = "data"
` + strings.Replace(watch, "$SET", `owner = "slipagent-no-such-user"`, 1),
			[]string{"on " + cfg + " line 8", `output "files" of watch "w": owner = "slipagent-no-such-user"`}},
		{"an unknown output group", `data_dir = "data"
` + strings.Replace(watch, "$SET", `group = "slipagent-no-such-group"`, 1),
			[]string{"on " + cfg + " line 8", `output "files" of watch "w": group = "slipagent-no-such-group"`}},
		{"a missing token file", `data_dir = "data"
http {
  listen     = "127.0.0.1:0"
  token_file = "missing.token"
}`, []string{cfg + ":4: http token_file", filepath.Join(dir, "missing.token") + ": no such file"}},
		{"an empty token file", `data_dir = "data"
http {
  listen     = "127.0.0.1:0"
  token_file = "empty.token"
}`, []string{cfg + ":4: http token_file " + filepath.Join(dir, "empty.token") + " is empty"}},
		{"a missing TLS certificate", `data_dir = "data"
http {
  listen = "127.0.0.1:0"
  tls {
    cert_file = "missing.pem"
    key_file  = "missing.key"
  }
}`, []string{cfg + ":4: http tls: cert_file " + filepath.Join(dir, "missing.pem"), "no such file"}},
		{"a data_dir that is a file", `data_dir = "afile"`, []string{cfg + ":1: data_dir " + filepath.Join(dir, "afile") + ": not a directory"}},
		{"a data_dir below a file", `data_dir = "afile/data"`, []string{cfg + ":1: data_dir " + filepath.Join(dir, "afile", "data") + ": " + filepath.Join(dir, "afile") + " is not a directory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(cfg, []byte(tc.src), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runCmd(t, "validate", "-config", cfg, "-modules=false")
			if tc.want == nil {
				if code != exitOK {
					t.Fatalf("validate = %d %q %q, want ok", code, out, errOut)
				}
				return
			}
			text := strings.Join(strings.Fields(errOut), " ") // the diagnostics are wrapped
			if code != exitFailure {
				t.Fatalf("validate = %d %q %q, want %d", code, out, errOut, exitFailure)
			}
			for _, want := range tc.want {
				if !strings.Contains(text, want) {
					t.Errorf("validate does not say %q:\n%s", want, errOut)
				}
			}
		})
	}
}

// TestEveryCommandNamesABadDataDir: validate, once, plan and run refuse a
// data_dir that is a regular file with one message, naming the setting, the
// path and where it is set, and exit 1.
func TestEveryCommandNamesABadDataDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "afile")
	if err := os.WriteFile(file, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "agent.hcl")
	// No NATS server is needed: each command refuses before it dials.
	if err := os.WriteFile(cfg, []byte("data_dir = \"afile\"\nnats { servers = [\"nats://127.0.0.1:1\"] }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	want := "agent: " + cfg + ":1: data_dir " + file + ": not a directory"
	for _, cmd := range []string{"validate", "once", "plan", "run"} {
		code, _, errOut := runCmd(t, cmd, "-config", cfg)
		if code != exitFailure || !strings.Contains(errOut, want) {
			t.Errorf("slipagent %s = %d %q, want %d and %q", cmd, code, errOut, exitFailure, want)
		}
	}
}
