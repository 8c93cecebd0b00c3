package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/internal/plugintest"
)

func TestSignals(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	exited := make(chan int, 1)
	var stderr bytes.Buffer
	go cancelOnSignal(sigs, cancel, &stderr, func(code int) { exited <- code })
	sigs <- syscall.SIGTERM
	<-ctx.Done() // the first signal cancels the root context
	select {
	case code := <-exited:
		t.Fatalf("exited with %d on the first signal", code)
	default:
	}
	sigs <- syscall.SIGINT
	if code := <-exited; code != exitInterrupted {
		t.Fatalf("second signal exited with %d, want %d", code, exitInterrupted)
	}
}

// A second SIGINT makes the agent exit at once: a hook still running is
// killed with it, not left behind without its agent (it stays journaled
// and runs again at the next start).
func TestSecondSignalKillsRunningHooks(t *testing.T) {
	srv := natstest.Run(t)
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "hook.pid")
	os.WriteFile(filepath.Join(dir, "files.wasm"), plugintest.Module(t, "plugins/examples/files"), 0o644)
	cfg := `
data_dir = "` + dir + `/data"
nats { servers = ["` + srv.URL() + `"] }
plugin "files" {
  module = "` + dir + `/files.wasm"
  config = { prefix = "files.", hook = "slow" }
}
watch "cfg" {
  bucket = "cfg"
  plugin = "files"
  output "files" { dir = "` + dir + `/out" }
  hook "slow" {
    command = ["sh", "-c", "echo $$ > ` + pidFile + `; exec sleep 120"]
    timeout = "5m"
  }
}
`
	path := filepath.Join(dir, "agent.hcl")
	os.WriteFile(path, []byte(cfg), 0o600)
	putRev(t, srv.URL(), "files.a", "1")
	p := startSlipagent(t, dir, "run", "-config", path)
	var pid int
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(b), "\n") {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hook did not start:\n%s", p.output())
		}
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	time.Sleep(500 * time.Millisecond) // the first one is handled: a graceful stop, waiting for the hook
	p.stop(t, syscall.SIGINT)
	if code := p.cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Errorf("exit code %d after a second SIGINT, want %d:\n%s", code, exitInterrupted, p.output())
	}
	for deadline := time.Now().Add(30 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the hook (pid %d) outlived the agent", pid)
		}
	}
}
