package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/agent"
	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/internal/plugintest"
)

// onceConfig is a watch of bucket cfg through the files plugin into
// DIR/out, with a hook that logs its runs to DIR/hooks.log; extra goes
// into the hook block.
func onceConfig(t *testing.T, dir, url, extra string) string {
	t.Helper()
	os.WriteFile(filepath.Join(dir, "files.wasm"), plugintest.Module(t, "plugins/examples/files"), 0o644)
	cfg := filepath.Join(dir, "agent.hcl")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
data_dir = "%[1]s/data"
cache_dir = %[4]q
nats {
  servers = ["%[2]s"]
  timeout = "2s"
}
plugin "files" {
  module = "files.wasm"
  config = { prefix = "files.", hook = "changed" }
}
watch "cfg" {
  bucket = "cfg"
  plugin = "files"
  output "files" { dir = "%[1]s/out" }
  hook "changed" {
    command = ["sh", "-c", "echo $SLIPAGENT_REVISION >> %[1]s/hooks.log"]
    %[3]s
  }
}
`, dir, url, extra, plugintest.CacheDir(t))), 0o644)
	return cfg
}

func hookRuns(dir string) []string {
	b, _ := os.ReadFile(filepath.Join(dir, "hooks.log"))
	return strings.Fields(string(b))
}

// kvMust returns a function that runs "slipagent kv -server url ARGS..."
// and fails t unless it exits 0.
func kvMust(t *testing.T, url string) func(args ...string) {
	return func(args ...string) {
		t.Helper()
		if code, _, errOut := runCmd(t, append([]string{"kv", "-server", url}, args...)...); code != exitOK {
			t.Fatalf("kv %q: %s", args, errOut)
		}
	}
}

func TestOnceCatchesUpAndExits(t *testing.T) {
	srv := natstest.Run(t)
	dir := t.TempDir()
	cfg := onceConfig(t, dir, srv.URL(), "")
	kv := kvMust(t, srv.URL())
	kv("put", "cfg", "files.a", "alpha")
	kv("put", "cfg", "files.b", "bravo")

	if code, _, errOut := runCmd(t, "once", "-config", cfg); code != exitOK {
		t.Fatalf("once = %d; stderr:\n%s", code, errOut)
	}
	if a, b := readOrErr(filepath.Join(dir, "out/a")), readOrErr(filepath.Join(dir, "out/b")); a != "alpha" || b != "bravo" {
		t.Fatalf("after once: a=%q b=%q", a, b)
	}
	if runs := hookRuns(dir); len(runs) != 1 || runs[0] != "2" {
		t.Fatalf("hook runs %q, want one at revision 2", runs)
	}

	// Nothing changed: nothing to apply, no hook.
	if code, _, errOut := runCmd(t, "once", "-config", cfg); code != exitOK || len(hookRuns(dir)) != 1 {
		t.Fatalf("second once = %d, hook runs %q; stderr:\n%s", code, hookRuns(dir), errOut)
	}

	// What changed while no agent ran is applied from the checkpoint.
	kv("put", "cfg", "files.a", "again")
	kv("delete", "cfg", "files.b")
	if code, _, errOut := runCmd(t, "once", "-config", cfg); code != exitOK {
		t.Fatalf("third once = %d; stderr:\n%s", code, errOut)
	}
	if a := readOrErr(filepath.Join(dir, "out/a")); a != "again" {
		t.Errorf("a = %q", a)
	}
	if _, err := os.Stat(filepath.Join(dir, "out/b")); !os.IsNotExist(err) {
		t.Errorf("b not removed (%v)", err)
	}
	// The two changes are the backlog of a resumed watch: one batch, one
	// hook run.
	if runs := hookRuns(dir); len(runs) != 2 || runs[1] != "4" {
		t.Errorf("hook runs %q, want a second one, at revision 4", runs)
	}
}

// once checks the files it trusts before it dials, and its run does not
// check them again: a warning is said once.
func TestOnceWarnsOnce(t *testing.T) {
	srv := natstest.Run(t)
	dir := t.TempDir()
	cfg := onceConfig(t, dir, srv.URL(), "")
	kvMust(t, srv.URL())("put", "cfg", "files.a", "alpha")
	if err := os.Chmod(filepath.Join(dir, "files.wasm"), 0o666); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCmd(t, "once", "-config", cfg)
	if n := strings.Count(errOut, "plugin module without a sha256 pin can be changed by others"); code != exitOK || n != 1 {
		t.Errorf("once with a module others can change = %d, warned %d times, want 0 and once; stderr:\n%s", code, n, errOut)
	}
}

func TestOnceExitCodes(t *testing.T) {
	srv := natstest.Run(t)
	dir := t.TempDir()
	if code, _, errOut := runCmd(t, "kv", "-server", srv.URL(), "put", "cfg", "files.a", "bad"); code != exitOK {
		t.Fatal(errOut)
	}
	// A failing check fails the watch: exit 1, the watch and the check named.
	cfg := onceConfig(t, dir, srv.URL(), `check = ["sh", "-c", "exit 1"]`)
	code, _, errOut := runCmd(t, "once", "-config", cfg)
	if code != exitFailure || !strings.Contains(errOut, "watch cfg") || !strings.Contains(errOut, "check") {
		t.Errorf("once with a failing check = %d; stderr:\n%s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "out/a")); !os.IsNotExist(err) {
		t.Errorf("a refused file was committed (%v)", err)
	}

	// No server: exit 4, the URL named.
	cfg = onceConfig(t, dir, "nats://127.0.0.1:1", "")
	code, _, errOut = runCmd(t, "once", "-config", cfg)
	if code != exitUnreachable || !strings.Contains(errOut, "nats://127.0.0.1:1") {
		t.Errorf("once without a server = %d; stderr:\n%s", code, errOut)
	}
	// A data dir others can write is refused before the connection is
	// tried: the refusal does not hide behind an unreachable server.
	if err := os.Chmod(filepath.Join(dir, "data"), 0o777); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCmd(t, "once", "-config", cfg)
	if code != exitFailure || !strings.Contains(errOut, "data dir "+filepath.Join(dir, "data")+" is writable by every user") {
		t.Errorf("once with an untrusted data dir and no server = %d; stderr:\n%s", code, errOut)
	}
	os.Chmod(filepath.Join(dir, "data"), 0o700)

	if code, _, _ := runCmd(t, "once", "-config", cfg, "extra"); code != exitUsage {
		t.Errorf("once with an argument = %d, want %d", code, exitUsage)
	}
}

// TestOnceHeld: a bucket emptied while no agent ran is held by the guard:
// exit 7, the outputs kept.
func TestOnceHeld(t *testing.T) {
	dir, cfg := heldByOnce(t)
	if entries, _ := os.ReadDir(filepath.Join(dir, "out")); len(entries) != heldKeys {
		t.Errorf("%d outputs left, want the %d kept while held", len(entries), heldKeys)
	}
	// Without a confirmation, the next once is held again; the error
	// names the watch and its state once.
	code, _, errOut := runCmd(t, "once", "-config", cfg)
	if want := "slipagent once: watch cfg: held: a batch would remove 12 of the watch's 12 keys"; code != exitHeld || !strings.Contains(errOut, want) {
		t.Errorf("once of a hold not confirmed = %d, want %d and %q; stderr:\n%s", code, exitHeld, want, errOut)
	}
}

// TestOnceAppliesAConfirmedHold: once a hold is confirmed, once applies the
// held batch (a full render) and exits 0, rather than stopping the render
// it just started.
func TestOnceAppliesAConfirmedHold(t *testing.T) {
	dir, cfg := heldByOnce(t)
	if code, out, errOut := runCmd(t, "resync", "--confirm", "cfg", "-config", cfg); code != exitOK || !strings.Contains(out, "confirmed") {
		t.Fatalf("resync --confirm = %d %q %q", code, out, errOut)
	}
	if code, _, errOut := runCmd(t, "once", "-config", cfg); code != exitOK {
		t.Fatalf("once after the confirmation = %d; stderr:\n%s", code, errOut)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "out")); len(entries) != 0 {
		t.Errorf("%d outputs left, want none: the bucket is empty", len(entries))
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "watches", "cfg", "held.json")); !os.IsNotExist(err) {
		t.Errorf("the hold was not lifted (%v)", err)
	}
	// The hold is over: the next once has nothing to do.
	if code, _, errOut := runCmd(t, "once", "-config", cfg); code != exitOK {
		t.Errorf("once after the confirmed render = %d; stderr:\n%s", code, errOut)
	}
}

const heldKeys = 12

// heldByOnce renders heldKeys keys with once, deletes them all and runs
// once again, which the guard holds (exit 7). It returns the test's
// directory and configuration file.
func heldByOnce(t *testing.T) (dir, cfg string) {
	t.Helper()
	srv := natstest.Run(t)
	dir = t.TempDir()
	cfg = onceConfig(t, dir, srv.URL(), "")
	// The guard judges one batch: a window lets the backlog of deletions
	// arrive as one (without one, the first is applied alone).
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(b), `plugin = "files"
  output`, `plugin = "files"
  batch { window = "1s" }
  output`, 1)), 0o644)
	for i := range heldKeys {
		runCmd(t, "kv", "-server", srv.URL(), "put", "cfg", fmt.Sprintf("files.k%02d", i), "v")
	}
	if code, _, errOut := runCmd(t, "once", "-config", cfg); code != exitOK {
		t.Fatalf("once = %d; stderr:\n%s", code, errOut)
	}
	for i := range heldKeys {
		runCmd(t, "kv", "-server", srv.URL(), "delete", "cfg", fmt.Sprintf("files.k%02d", i))
	}
	code, _, errOut := runCmd(t, "once", "-config", cfg)
	if code != exitHeld || !strings.Contains(errOut, "resync --confirm cfg") {
		t.Fatalf("once of an emptied bucket = %d; stderr:\n%s", code, errOut)
	}
	return dir, cfg
}

func readOrErr(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

// TestOnceAppliesABacklogInFullBatches: thousands of changes made while no
// agent ran reach it from a real server in many deliveries; a fresh data
// dir renders them once, and a resumed watch applies them in batches of the
// watch's batch max, not in the small batches of whatever each delivery
// brought (each batch runs the hook once, so hook runs count the batches).
// kvcore's batching tests script the slow deliveries that this one cannot
// force.
func TestOnceAppliesABacklogInFullBatches(t *testing.T) {
	srv := natstest.Run(t)
	dir := t.TempDir()
	cfg := onceConfig(t, dir, srv.URL(), "")
	ctx := context.Background()
	js := natstest.JetStream(t, srv.URL())
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "cfg"})
	if err != nil {
		t.Fatal(err)
	}
	put := func(round int) {
		t.Helper()
		for i := range backlog {
			if _, err := kv.PutString(ctx, fmt.Sprintf("files.k%04d", i), fmt.Sprintf("r%d", round)); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(round, runs int) {
		t.Helper()
		if code, _, errOut := runCmd(t, "once", "-config", cfg); code != exitOK {
			t.Fatalf("once after round %d = %d; stderr:\n%s", round, code, errOut)
		}
		for _, i := range []int{0, backlog / 2, backlog - 1} {
			if got, want := readOrErr(filepath.Join(dir, fmt.Sprintf("out/k%04d", i))), fmt.Sprintf("r%d", round); got != want {
				t.Fatalf("after round %d: k%04d = %q, want %q", round, i, got, want)
			}
		}
		if got := len(hookRuns(dir)); got != runs {
			t.Fatalf("after round %d: %d hook runs in all, want %d (batches of %d changes)", round, got, runs, agent.DefaultBatchMax)
		}
	}
	put(1)
	check(1, 1) // a fresh data dir: the initial sync renders once
	put(2)
	check(2, 1+(backlog+agent.DefaultBatchMax-1)/agent.DefaultBatchMax) // the backlog of a resumed watch
}

// backlog is how many keys TestOnceAppliesABacklogInFullBatches changes
// while no agent runs: several batches' worth.
const backlog = 2500

// TestOnceConfigPathSpellings: a configuration with relative paths, named
// relative to one working directory, then absolutely, then relative to
// another, is one configuration: plan finds it rendered, and once renders
// nothing again (the hook runs once).
func TestOnceConfigPathSpellings(t *testing.T) {
	srv := natstest.Run(t)
	dir := t.TempDir()
	cfg := onceConfig(t, dir, srv.URL(), "")
	b, _ := os.ReadFile(cfg)
	rel := strings.ReplaceAll(string(b), `"`+dir+`/data"`, `"data"`)
	rel = strings.ReplaceAll(rel, `"`+dir+`/out"`, `"out"`)
	os.WriteFile(cfg, []byte(rel), 0o644)
	if code, _, errOut := runCmd(t, "kv", "-server", srv.URL(), "put", "cfg", "files.a", "alpha"); code != exitOK {
		t.Fatalf("kv put: %s", errOut)
	}

	t.Chdir(dir)
	if code, _, errOut := runCmd(t, "once", "-config", "agent.hcl"); code != exitOK {
		t.Fatalf("once -config agent.hcl = %d; stderr:\n%s", code, errOut)
	}
	if a := readOrErr(filepath.Join(dir, "out/a")); a != "alpha" {
		t.Fatalf("a = %q", a)
	}
	if code, out, errOut := runCmd(t, "plan", "-config", cfg); code != exitOK || !strings.Contains(out, "up to date") {
		t.Errorf("plan -config %s = %d, want it up to date\n%s\nstderr:\n%s", cfg, code, out, errOut)
	}
	t.Chdir(filepath.Dir(dir))
	spelled := filepath.Join(filepath.Base(dir), "agent.hcl")
	if code, _, errOut := runCmd(t, "once", "-config", spelled); code != exitOK {
		t.Fatalf("once -config %s = %d; stderr:\n%s", spelled, code, errOut)
	}
	if runs := hookRuns(dir); len(runs) != 1 {
		t.Errorf("hook runs %q, want one: the same configuration rendered again", runs)
	}
}

// TestOnceAndPlanSayTheyDoNotRetry: a plugin that fails makes once and plan
// exit 1 at once, and their logs say so rather than promise a retry.
func TestOnceAndPlanSayTheyDoNotRetry(t *testing.T) {
	srv := natstest.Run(t)
	dir := t.TempDir()
	cfg := onceConfig(t, dir, srv.URL(), "")
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(b), `config = { prefix = "files.", hook = "changed" }`, `config = { prefix = "files.", hook = "changed" }
  limits { max_file_size = 1 }`, 1)), 0o644)
	if code, _, errOut := runCmd(t, "kv", "-server", srv.URL(), "put", "cfg", "files.a", "larger than a byte"); code != exitOK {
		t.Fatalf("kv put: %s", errOut)
	}
	for _, c := range []struct{ cmd, says string }{
		{"plan", "slipagent plan: watch cfg:"},
		{"once", "watch failed; once stops it"},
	} {
		code, _, errOut := runCmd(t, c.cmd, "-config", cfg)
		if code != exitFailure || !strings.Contains(errOut, c.says) || strings.Contains(errOut, "retrying") {
			t.Errorf("%s with a failing plugin = %d, want %d, %q and no retry; stderr:\n%s", c.cmd, code, exitFailure, c.says, errOut)
		}
	}
}

// TestPluginFailureNamesThePluginOnce: a plugin call that fails is reported
// by once and plan naming the plugin once (the host's error names it; the
// agent added "plugin tmpl: " in front).
func TestPluginFailureNamesThePluginOnce(t *testing.T) {
	srv := natstest.Run(t)
	dir := t.TempDir()
	if code, _, errOut := runCmd(t, "kv", "-server", srv.URL(), "put", "cfg", "app.a", "1"); code != exitOK {
		t.Fatal(errOut)
	}
	os.WriteFile(filepath.Join(dir, "template.wasm"), plugintest.Module(t, "plugins/examples/template"), 0o644)
	cfg := filepath.Join(dir, "agent.hcl")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
data_dir  = "data"
cache_dir = %[2]q
nats {
  servers = [%[1]q]
  timeout = "2s"
}
plugin "tmpl" {
  module = "template.wasm"
  config = { prefix = "app.", path = "app.conf", template = "{{ parseInt \"x\" }}" }
}
watch "w" {
  bucket = "cfg"
  plugin = "tmpl"
  output "out" { dir = "out" }
}
`, srv.URL(), plugintest.CacheDir(t))), 0o644)
	for _, cmd := range []string{"once", "plan"} {
		code, _, errOut := runCmd(t, cmd, "-config", cfg)
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		last := lines[len(lines)-1]
		if code != exitFailure || !strings.Contains(last, `plugin "tmpl"`) || strings.Count(last, "tmpl") != 1 || !strings.Contains(last, "parseInt") {
			t.Errorf("%s with a failing template = %d, last line %q; want the plugin named once", cmd, code, last)
		}
	}
}

// A creds file whose nkey seed does not parse is a configuration error,
// named with the file, not an unreachable server: once, plan, validate and
// kv exit 1, and run does not start.
func TestBadCredsFile(t *testing.T) {
	acc := natstest.Operator(t)
	srv := natstest.Run(t, acc.Option)
	dir := t.TempDir()
	creds := filepath.Join(dir, "agent.creds")
	lines := strings.Split(string(acc.Creds), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "SU") { // the seed: break its checksum
			c := byte('A')
			if l[4] == 'A' {
				c = 'B'
			}
			lines[i] = l[:4] + string(c) + l[5:]
		}
	}
	if err := os.WriteFile(creds, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := onceConfig(t, dir, srv.URL(), "")
	src, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(src), `timeout = "2s"`, `timeout = "2s"
  creds_file = "`+creds+`"`, 1)), 0o600)

	want := `unable to extract key pair from file "` + creds + `"`
	for _, args := range [][]string{{"once"}, {"plan"}, {"validate"}} {
		code, _, errOut := runCmd(t, append(args, "-config", cfg)...)
		if code != exitFailure || !strings.Contains(errOut, want) || strings.Count(errOut, creds) != 1 || strings.Contains(errOut, "reached") {
			t.Errorf("%s with a bad creds file = %d, want 1 and the file named once; stderr:\n%s", args[0], code, errOut)
		}
	}
	// So with the tools' -creds.
	if code, _, errOut := runCmd(t, "kv", "-server", srv.URL(), "-creds", creds, "get", "cfg", "files.a"); code != exitFailure || !strings.Contains(errOut, want) {
		t.Errorf("kv -creds with a bad creds file = %d, want 1 and the file named; stderr:\n%s", code, errOut)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, plugintest.Binary(t), "run", "-config", cfg).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitFailure || !strings.Contains(string(out), creds) || !strings.Contains(string(out), "nkeys: invalid checksum") {
		t.Errorf("run with a bad creds file = %v, want exit 1 naming the file; output:\n%s", err, out)
	}

	// A creds file not there yet may be provisioned after the agent
	// starts: run waits for it, as for a server not up yet.
	os.Remove(creds)
	p := startSlipagent(t, dir, "run", "-config", cfg)
	time.Sleep(time.Second)
	if err := os.WriteFile(creds, acc.Creds, 0o600); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); !strings.Contains(p.output(), "connected to NATS"); time.Sleep(50 * time.Millisecond) {
		select {
		case <-p.done:
			t.Fatalf("run without its creds file yet exited:\n%s", p.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("run did not connect once its creds file appeared:\n%s", p.output())
		}
	}
}

// NATS settings that can never work (a server URL that does not parse, a
// port out of range, an empty URL or list, a TLS file that cannot be
// read) are a configuration error naming the setting, as bad credentials
// are, not an unreachable server: validate, once and run exit 1 at once,
// and the tools refuse such a -server as a bad command line (exit 2).
// Every form nats.go accepts still connects, host:port without a scheme
// included.
func TestBadNATSSettings(t *testing.T) {
	dir := t.TempDir()
	cfg := onceConfig(t, dir, "nats://127.0.0.1:4222", "")
	src, _ := os.ReadFile(cfg)
	for _, tc := range []struct{ nats, want string }{
		{`servers = ["htp:/bad url"]`, `nats servers: "htp:/bad url": a path`},
		{`servers = ["nats://127.0.0.1:99999"]`, `port 99999 is not between 1 and 65535`},
		{`servers = [""]`, `nats servers: "": it names no server`},
		{`servers = []`, `nats servers lists no server`},
		{`tls { ca_file = "/nonexistent/ca.pem" }`, `nats tls ca_file /nonexistent/ca.pem: no such file`},
	} {
		os.WriteFile(cfg, []byte(strings.Replace(string(src), `servers = ["nats://127.0.0.1:4222"]`, tc.nats, 1)), 0o600)
		for _, args := range [][]string{{"validate", "-modules=false"}, {"once"}, {"run"}} {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			cmd := exec.CommandContext(ctx, plugintest.Binary(t), append(args, "-config", cfg)...)
			var errOut strings.Builder
			cmd.Stderr = &errOut
			err := cmd.Run()
			cancel()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != exitFailure || !strings.Contains(errOut.String(), tc.want) || strings.Contains(errOut.String(), "reached") {
				t.Errorf("%s with nats { %s } = %v, want exit 1 saying %q; stderr:\n%s", args[0], tc.nats, err, tc.want, errOut.String())
			}
		}
	}

	srv := natstest.Run(t)
	hostPort := strings.TrimPrefix(srv.URL(), "nats://")
	for _, server := range []string{hostPort, "nats://" + hostPort + "/", " , " + srv.URL()} {
		if code, _, errOut := runCmd(t, "kv", "-server", server, "put", "cfg", "k", "v"); code != exitOK {
			t.Errorf("kv -server %q put = %d %q; want it connected", server, code, errOut)
		}
	}
	for _, tc := range []struct{ server, want string }{
		{"htp:/bad url", `slipagent kv: -server: bad server URL "htp:/bad url": a path`},
		{"nats://127.0.0.1:99999", `-server: bad server URL "nats://127.0.0.1:99999": port 99999 is not between 1 and 65535`},
		{"", `-server: bad server URL "": it names no server`},
		{srv.URL() + ",tls://x:0", `-server: bad server URL "tls://x:0": port 0`},
	} {
		if code, _, errOut := runCmd(t, "kv", "-server", tc.server, "get", "cfg", "k"); code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("kv -server %q get = %d %q; want exit 2 saying %q", tc.server, code, errOut, tc.want)
		}
	}
	cmd := exec.Command(plugintest.Binary(t), "kv", "get", "cfg", "k")
	cmd.Env = append(os.Environ(), "NATS_URL=nats://127.0.0.1:99999")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitUsage || !strings.Contains(string(out), "-server ($NATS_URL): bad server URL") {
		t.Errorf("kv with a bad $NATS_URL = %v %q; want exit 2 naming $NATS_URL", err, out)
	}
}
