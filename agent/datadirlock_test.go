package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestASecondAgentOnADataDirIsRefused: an agent started on a data_dir
// another one runs on fails at once, naming the data_dir, the other
// agent's pid and the lock, before it serves, reports or opens a fold; once
// the first stops, an agent starts there again.
func TestASecondAgentOnADataDirIsRefused(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "alpha")
	cfg := f.config(filesConfig)
	first, stop := f.start(cfg)
	waitFor(t, "the first agent ready", func() bool { return first.Ready() })

	second := f.agent(f.config(filesConfig))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := second.Run(ctx)
	lock := filepath.Join(cfg.DataDir, dataDirLock)
	want := fmt.Sprintf("agent: %s:2: data_dir %s: in use by another agent (pid %d holds %s); stop it, or give this agent a data_dir of its own",
		filepath.Join(f.dir, "agent.hcl"), cfg.DataDir, os.Getpid(), lock)
	if !errors.Is(err, ErrDataDirInUse) || err.Error() != want {
		t.Fatalf("second Run = %v\nwant %s", err, want)
	}
	if got := second.Status(); len(got) != 1 || got[0].Batches != 0 {
		t.Errorf("the refused agent's watches: %+v", got)
	}

	stop()
	third, stop := f.start(f.config(filesConfig))
	defer stop()
	waitFor(t, "an agent ready after the first stopped", func() bool { return third.Ready() })
	if b, _ := os.ReadFile(filepath.Join(f.dir, "out", "a.conf")); !strings.Contains(string(b), "alpha") {
		t.Errorf("a.conf = %q", b)
	}
}

// TestOnceBesideAnAgentIsRefusedBeforeConnecting: once takes the lock
// before it connects, so beside a running agent it fails at once naming
// it, even with no NATS server answering.
func TestOnceBesideAnAgentIsRefusedBeforeConnecting(t *testing.T) {
	f := newFixture(t)
	src := strings.Replace(filesConfig, `nats { servers = ["$NATS"] }`, `nats {
  servers = ["nats://127.0.0.1:1"]
  timeout = "5s"
}`, 1)
	f.start(f.config(src)) // retries connecting for ever
	waitFor(t, "the first agent to hold the lock", func() bool {
		b, _ := os.ReadFile(filepath.Join(f.dir, "data", dataDirLock))
		return len(b) > 0
	})
	// Connecting first, Once would fail on the server instead
	// (ErrUnreachable, once the timeout ran out).
	if err := f.agent(f.config(src)).Once(context.Background()); !errors.Is(err, ErrDataDirInUse) {
		t.Fatalf("Once = %v, want %v", err, ErrDataDirInUse)
	}
}

// TestRunStopsWhenItsDataDirIsRemoved: an agent whose data_dir is removed
// while it runs (its lock file gone) stops with ErrDataDirLost, logged at
// error level, instead of running on with its folds and records deleted
// and the directory free for another agent; so does one whose lock file is
// replaced. Started again, it rebuilds its state and the files.
func TestRunStopsWhenItsDataDirIsRemoved(t *testing.T) {
	for _, damage := range []string{"removed", "replaced"} {
		t.Run(damage, func(t *testing.T) {
			f := newFixture(t)
			f.put("cfg", "files.a.conf", "alpha")
			cfg := f.config(filesConfig)
			a := f.agent(cfg)
			a.dataDirCheck = 20 * time.Millisecond
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			waitFor(t, "ready", a.Ready)

			lock := filepath.Join(cfg.DataDir, dataDirLock)
			if damage == "removed" {
				if err := os.RemoveAll(cfg.DataDir); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := os.WriteFile(lock+".new", []byte("0\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(lock+".new", lock); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case err := <-done:
				if !errors.Is(err, ErrDataDirLost) || !strings.Contains(err.Error(), lock) {
					t.Fatalf("Run = %v, want ErrDataDirLost naming %s", err, lock)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not stop")
			}

			os.Remove(filepath.Join(f.dir, "out", "a.conf"))
			b, _ := f.start(f.config(filesConfig))
			waitFor(t, "the file again", func() bool { return b.Ready() && readFile(filepath.Join(f.dir, "out", "a.conf")) == "alpha" })
		})
	}
}
