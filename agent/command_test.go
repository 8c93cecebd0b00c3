package agent

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var discard = slog.New(slog.DiscardHandler)

func TestRunCommandSuccessAndEnv(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	err := runCommand(context.Background(), discard, []string{"sh", "-c", `printf %s "$SLIPAGENT_HOOK" > "$0"`, out}, 5*time.Second, []string{"SLIPAGENT_HOOK=reload"})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "reload" {
		t.Errorf("command saw SLIPAGENT_HOOK=%q", b)
	}
}

func TestRunCommandFailureCarriesExitCodeAndOutput(t *testing.T) {
	err := runCommand(context.Background(), discard, []string{"sh", "-c", "echo first; echo 'config test failed' >&2; exit 3"}, 5*time.Second, nil)
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
	err := runCommand(context.Background(), discard, argv, 100*time.Millisecond, nil)
	if !errors.Is(err, errCommandTimeout) {
		t.Fatalf("err = %v, want a timeout", err)
	}
	time.Sleep(2500 * time.Millisecond)
	if _, err := os.Stat(marker); err == nil {
		t.Error("a grandchild of the timed-out command survived and ran")
	}
}

func TestRunCommandMissingProgram(t *testing.T) {
	err := runCommand(context.Background(), discard, []string{"/nonexistent/slipagent-hook"}, time.Second, nil)
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
