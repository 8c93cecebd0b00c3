package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/plugintest"
)

// startDev runs "slipagent dev" in ./dev-out of a new working directory,
// with its NATS port taken, until the dev file appears; stop ends it.
func startDev(t *testing.T, extra ...string) (dir string, stop func() int) {
	t.Helper()
	t.Setenv("NATS_URL", "")
	// The test process's shared compile cache (dev's own default is under
	// its data dir): each module compiles once per process, not per test.
	t.Setenv("CACHE_DIRECTORY", plugintest.CacheDir(t))
	dir = t.TempDir()
	plugins := filepath.Join(dir, "plugins")
	os.Mkdir(plugins, 0o755)
	for _, name := range []string{"nginx-upstreams", "files", "template"} {
		os.WriteFile(filepath.Join(plugins, name+".wasm"), plugintest.Module(t, "plugins/examples/"+name), 0o644)
	}
	t.Chdir(dir) // after building the modules: that needs the repository
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	port := strconv.Itoa(taken.Addr().(*net.TCPAddr).Port)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var stdout, stderr bytes.Buffer
	args := append([]string{"dev", "-plugins", plugins, "-port", port, "-http", "127.0.0.1:" + port}, extra...)
	go func() { done <- run(ctx, args, &stdout, &stderr) }()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, ok := runningDev(); ok {
			break
		}
		select {
		case code := <-done:
			t.Fatalf("dev exited %d; stderr:\n%s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("dev did not record its addresses; stderr:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopped := false
	stop = func() int {
		if stopped {
			return exitOK
		}
		stopped = true
		cancel()
		code := <-done
		if t.Failed() {
			t.Logf("dev's stderr:\n%s", stderr.String())
		}
		if strings.Contains(stdout.String(), "-server") {
			t.Errorf("the banner's commands name the server; run from the repository root they need not:\n%s", stdout.String())
		}
		if _, err := os.Stat(filepath.Join(dir, defaultDevDir, devFile)); !os.IsNotExist(err) {
			t.Errorf("dev left %s behind (%v)", devFile, err)
		}
		return code
	}
	t.Cleanup(func() { stop() })
	return dir, stop
}

// TestDevCommandsFindTheServer: with dev's ports taken, the README's kv and
// status commands (no -server, no -addr) reach the dev server and agent.
func TestDevCommandsFindTheServer(t *testing.T) {
	dir, stop := startDev(t)
	// The first start compiles the example plugins: minutes on a loaded machine.
	waitUntil(t, "status to report every watch ready", func() bool {
		code, _, _ := runCmd(t, "status")
		return code == exitOK
	})
	code, out, _ := runCmd(t, "status")
	if !strings.Contains(out, "nginx") || strings.Contains(out, "not connected") {
		t.Errorf("status = %d\n%s", code, out)
	}
	if code, out, errOut := runCmd(t, "kv", "put", "app", "files.motd.txt", "hello again"); code != exitOK || !strings.HasPrefix(out, "rev ") {
		t.Fatalf("kv put without -server = %d %q %q", code, out, errOut)
	}
	motd := filepath.Join(dir, defaultDevDir, "out/files/motd.txt")
	waitUntil(t, "the change to reach its file", func() bool { return readOrErr(motd) == "hello again" })
	if code := stop(); code != exitOK {
		t.Errorf("dev exited %d", code)
	}
}

// TestDevNATSOnlyShowsCatchUp follows the README: a dev server without an
// agent, a change made meanwhile, then plan and once on the dev config.
func TestDevNATSOnlyShowsCatchUp(t *testing.T) {
	dir, _ := startDev(t, "-nats-only")
	cfg := filepath.Join(defaultDevDir, "agent.hcl")
	if code, _, errOut := runCmd(t, "once", "-config", cfg); code != exitOK {
		t.Fatalf("first once = %d; stderr:\n%s", code, errOut)
	}
	if code, _, errOut := runCmd(t, "kv", "put", "app", "files.motd.txt", "changed while no agent ran"); code != exitOK {
		t.Fatalf("kv put = %d %q", code, errOut)
	}
	code, out, errOut := runCmd(t, "plan", "-config", cfg)
	if code != exitOK || !strings.Contains(out, "+changed while no agent ran") {
		t.Fatalf("plan = %d\n%s\nstderr:\n%s", code, out, errOut)
	}
	if code, _, errOut := runCmd(t, "once", "-config", cfg); code != exitOK {
		t.Fatalf("once = %d; stderr:\n%s", code, errOut)
	}
	if got := readOrErr(filepath.Join(dir, defaultDevDir, "out/files/motd.txt")); got != "changed while no agent ran" {
		t.Errorf("motd.txt = %q after once", got)
	}
}

// A second dev on the same -dir is refused before it starts a server on
// the first one's store or touches its files, naming the first; the first
// one's dev.json stays.
func TestASecondDevOnItsDirIsRefused(t *testing.T) {
	dir, _ := startDev(t, "-nats-only")
	first, ok := runningDev()
	if !ok {
		t.Fatal("no dev record")
	}
	code, _, errOut := runCmd(t, "dev", "-nats-only", "-plugins", filepath.Join(dir, "plugins"), "-port", "0")
	want := fmt.Sprintf("slipagent dev: %s is in use by another slipagent dev (pid %d, NATS at %s): stop it, or give this one a -dir of its own",
		filepath.Join(dir, defaultDevDir), first.PID, first.NATS)
	if code != exitFailure || !strings.Contains(errOut, want) {
		t.Errorf("second dev = %d %q, want 1 and %q", code, errOut, want)
	}
	if now, ok := runningDev(); !ok || now != first {
		t.Errorf("dev record after the refused dev: %+v %v, want %+v", now, ok, first)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeDevRecord writes ./dev-out/dev.json in a new working directory, as
// a dev with these addresses would.
func writeDevRecord(t *testing.T, d devAddrs) {
	t.Helper()
	t.Setenv("NATS_URL", "")
	plugintest.Binary(t) // built from the repository, before leaving it
	t.Chdir(t.TempDir())
	if err := os.Mkdir(defaultDevDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := writeDevFile(defaultDevDir, d); err != nil {
		t.Fatal(err)
	}
}

// With a "slipagent dev -nats-only" running, status says that dev runs no
// agent, rather than asking whatever answers on the default port.
func TestStatusOfANATSOnlyDev(t *testing.T) {
	writeDevRecord(t, devAddrs{PID: os.Getpid(), NATS: "nats://127.0.0.1:4222"})
	code, out, errOut := runCmd(t, "status")
	if code != exitFailure || out != "" || !strings.Contains(errOut, "runs NATS only (-nats-only), no agent") || !strings.Contains(errOut, "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("status beside a NATS-only dev = %d %q %q, want 1 saying dev runs no agent", code, out, errOut)
	}
}

// A dev record whose process is gone — exited, or killed and not yet
// reaped by its parent (a zombie) — is ignored by kv and status.
func TestStaleDevRecordIsIgnored(t *testing.T) {
	for _, reap := range []bool{true, false} {
		t.Run(map[bool]string{true: "exited", false: "zombie"}[reap], func(t *testing.T) {
			dead := exec.Command("sleep", "60")
			if err := dead.Start(); err != nil {
				t.Fatal(err)
			}
			dead.Process.Kill()
			if reap {
				dead.Wait()
			} else {
				t.Cleanup(func() { dead.Wait() })
				waitUntil(t, "the killed process to be a zombie", func() bool {
					stat, _ := os.ReadFile("/proc/" + strconv.Itoa(dead.Process.Pid) + "/stat")
					return strings.Contains(string(stat), ") Z ")
				})
			}
			writeDevRecord(t, devAddrs{PID: dead.Process.Pid, NATS: "nats://stale-dev.invalid:4222"})
			if _, _, errOut := runCmd(t, "kv", "get", "cfg", "k"); strings.Contains(errOut, "stale-dev.invalid") {
				t.Errorf("kv used the record of a dev that is gone: %q", errOut)
			}
			if _, _, errOut := runCmd(t, "status"); strings.Contains(errOut, "-nats-only") {
				t.Errorf("status used the record of a dev that is gone: %q", errOut)
			}
		})
	}
}
