package agent

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var discard = slog.New(slog.DiscardHandler)

func TestRunCommandSuccessAndEnv(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	err := runCommand(context.Background(), discard, []string{"sh", "-c", `printf %s "$SLIPAGENT_HOOK" > "$0"`, out}, 5*time.Second, process{env: []string{"SLIPAGENT_HOOK=reload"}})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "reload" {
		t.Errorf("command saw SLIPAGENT_HOOK=%q", b)
	}
}

func TestRunCommandFailureCarriesExitCodeAndOutput(t *testing.T) {
	err := runCommand(context.Background(), discard, []string{"sh", "-c", "echo first; echo 'config test failed' >&2; exit 3"}, 5*time.Second, process{})
	var ce *CommandError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *CommandError", err)
	}
	if ce.ExitCode != 3 || !strings.Contains(ce.Output, "config test failed") || !strings.Contains(err.Error(), "config test failed") {
		t.Errorf("CommandError = %+v (%v)", ce, err)
	}
}

func TestRunCommandTimeoutKillsProcessGroup(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "late")
	// The grandchild would write the marker after the deadline if it survived.
	argv := []string{"sh", "-c", `(sleep 2; touch "$0") & sleep 30`, marker}
	err := runCommand(context.Background(), discard, argv, 100*time.Millisecond, process{})
	if !errors.Is(err, errCommandTimeout) {
		t.Fatalf("err = %v, want a timeout", err)
	}
	time.Sleep(2500 * time.Millisecond)
	if _, err := os.Stat(marker); err == nil {
		t.Error("a grandchild of the timed-out command survived and ran")
	}
}

// KillCommands kills every running command's whole process group: a
// slipagent exiting at once leaves no hook, nor a child of one, running.
func TestKillCommandsKillsRunningGroups(t *testing.T) {
	dir := t.TempDir()
	started, marker := filepath.Join(dir, "started"), filepath.Join(dir, "late")
	argv := []string{"sh", "-c", `(sleep 2; touch "$1") & touch "$0"; sleep 30`, started, marker}
	done := make(chan error, 1)
	go func() { done <- runCommand(context.Background(), discard, argv, time.Minute, process{}) }()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(started); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the command did not start")
		}
	}
	KillCommands()
	var ce *CommandError
	if err := <-done; !errors.As(err, &ce) || ce.ExitCode != -1 {
		t.Fatalf("err = %v, want the command killed", err)
	}
	time.Sleep(2500 * time.Millisecond)
	if _, err := os.Stat(marker); err == nil {
		t.Error("a child of the killed command survived and ran")
	}
}

func TestRunCommandMissingProgram(t *testing.T) {
	err := runCommand(context.Background(), discard, []string{"/nonexistent/slipagent-hook"}, time.Second, process{})
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode != -1 {
		t.Fatalf("err = %v, want a CommandError with no exit code", err)
	}
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	var tb tailBuffer
	tb.Write([]byte(strings.Repeat("a", outputTail)))
	tb.Write([]byte("the end"))
	if s := tb.String(); len(s) != outputTail || !strings.HasSuffix(s, "the end") {
		t.Errorf("tail = %d bytes ending %q", len(s), s[len(s)-10:])
	}
}

// runAsync runs runCommand in the background; the result arrives on the
// channel.
func runAsync(log *slog.Logger, argv []string, timeout time.Duration) <-chan error {
	done := make(chan error, 1)
	go func() { done <- runCommand(context.Background(), log, argv, timeout, process{}) }()
	return done
}

// waitResult waits generously for a command that should end well before its
// own timeout.
func waitResult(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("the command did not return")
		return nil
	}
}

// killPIDFile kills the background process whose pid a command wrote to path.
func killPIDFile(t *testing.T, path string) {
	t.Cleanup(func() {
		b, err := os.ReadFile(path)
		if err != nil {
			return
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

// A hook that exits 0 but leaves a background child holding its output
// (`service x restart`, `nohup d &`) succeeded: it is neither failed nor
// waited for until its timeout, and the child is left running.
func TestRunCommandBackgroundChildHoldingOutputIsASuccess(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	killPIDFile(t, pidFile)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil)).With("hook", "restart")
	argv := []string{"sh", "-c", `sleep 30 & echo $! > "$0"; echo done`, pidFile}
	if err := waitResult(t, runAsync(log, argv, time.Minute)); err != nil {
		t.Fatalf("err = %v, want success", err)
	}
	for _, want := range []string{"line=done", "level=WARN", "output capture was cut short", "hook=restart"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs.String())
		}
	}
	b, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid == 0 || syscall.Kill(pid, 0) != nil {
		t.Error("the background child did not survive its hook's success")
	}
}

// A failing command with a lingering child still fails, with its exit code.
func TestRunCommandFailureWithBackgroundChildKeepsExitCode(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	killPIDFile(t, pidFile)
	argv := []string{"sh", "-c", `sleep 30 & echo $! > "$0"; echo broken >&2; exit 4`, pidFile}
	err := waitResult(t, runAsync(discard, argv, time.Minute))
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 4 || !strings.Contains(ce.Output, "broken") {
		t.Fatalf("err = %v, want a CommandError with exit code 4", err)
	}
}

// A command reads EOF from stdin rather than waiting on the agent's.
func TestRunCommandStdinIsEmpty(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	argv := []string{"sh", "-c", `read x; printf '[%s]' "$x" > "$0"`, out}
	if err := waitResult(t, runAsync(discard, argv, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := readFile(out); got != "[]" {
		t.Errorf("the command read %q from stdin, want nothing", got)
	}
}
