package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/slipstreamkv/slipstream/internal/natstest"
)

// The server's store goes back to a copy taken before the agent applied
// files.a=v2 (revision 3), and the next write takes that revision with the
// same key and a value of the same size: files.a=w2. The agent's file
// follows the bucket whether the write reached the restored store before
// its watch re-attached (the record at the last revision it handled holds
// another value now), after (the stream was behind the watch: the agent
// resynced to the restored state first), or while it was stopped (the
// bucket's mark and the value read back at restart).
func TestARestoredStoreIsCaught(t *testing.T) {
	for _, when := range []string{"before the agent re-attaches", "after the agent re-attached", "while the agent is stopped"} {
		t.Run("write "+when, func(t *testing.T) { testRestoredStore(t, when) })
	}
}

func testRestoredStore(t *testing.T, when string) {
	srv := natstest.Run(t)
	dir := filesAgentDir(t)
	out := filepath.Join(dir, "out", "a")
	putRev(t, srv.URL(), "files.a", "v1")
	putRev(t, srv.URL(), "files.b", "v1")
	cfg := filesAgentConfig(t, dir, srv.URL(), "", "")
	agent := startSlipagent(t, dir, "run", "-config", cfg)
	waitStatus(t, "-config", cfg)
	waitFileHolds(t, out, "v1")

	backup := backupStore(t, srv)
	putAtRev(t, srv.URL(), "files.a", "v2", 3)
	waitFileHolds(t, out, "v2")
	if when == "while the agent is stopped" {
		// A restart records the bucket's mark at revision 3 (its
		// reconciliation finds the fold matching), so that the next one,
		// after the restore, sees a bucket with the same sequences and
		// count.
		agent.stop(t, syscall.SIGTERM)
		agent = startSlipagent(t, dir, "run", "-config", cfg)
		waitStatus(t, "-config", cfg)
		waitStateHolds(t, filepath.Join(dir, "data", "watches", "cfg", "state.json"), `"mark"`)
		agent.stop(t, syscall.SIGKILL)
	}

	restoreStore(t, srv, backup)
	switch when {
	case "before the agent re-attaches":
		// Another server on the restored store, on a port the agent does
		// not know, takes the write; then the agent's server comes back.
		other := natstest.Run(t, func(o *server.Options) { o.StoreDir = srv.StoreDir() })
		putAtRev(t, other.URL(), "files.a", "w2", 3)
		other.Shutdown()
		srv.Start()
	case "after the agent re-attached":
		srv.Start()
		waitFileHolds(t, out, "v1")
		// The stream behind the watch's cursor is a loss, said at ERROR
		// (it was a WARN asking whether the bucket was re-created).
		if log := agent.output(); !strings.Contains(log, "level=ERROR msg=\"the bucket went back in time") || !strings.Contains(log, "the server lost records it had acknowledged") {
			t.Errorf("the agent did not log the loss at ERROR; log:\n%s", log)
		}
		putAtRev(t, srv.URL(), "files.a", "w2", 3)
	case "while the agent is stopped":
		srv.Start()
		putAtRev(t, srv.URL(), "files.a", "w2", 3)
		agent = startSlipagent(t, dir, "run", "-config", cfg)
	}
	waitFileHolds(t, out, "w2")
	if got := waitStatus(t, "-config", cfg); !strings.Contains(got, "ready") {
		t.Errorf("status after the restore:\n%s\nlog:\n%s", got, agent.output())
	}
}

// putAtRev puts key=value in bucket cfg through url, retrying while the
// server starts, and checks the revision it was written at.
func putAtRev(t *testing.T, url, key, value string, want uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, out, errOut := runCmd(t, "kv", "-server", url, "put", "cfg", key, value)
		if code == exitOK {
			if rev, err := printedRev(out); err != nil || rev != want {
				t.Fatalf("%s=%s written at %q, want revision %d", key, value, out, want)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("kv put %s = %d %q %q", key, code, out, errOut)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitFileHolds waits up to a minute for path to hold want.
func waitFileHolds(t *testing.T, path, want string) {
	t.Helper()
	waitFile(t, path, fmt.Sprintf("hold %q", want), func(b string) bool { return b == want })
}

// waitStateHolds waits up to a minute for the watch state at path to hold
// want (a field set: state.json omits empty ones).
func waitStateHolds(t *testing.T, path, want string) {
	t.Helper()
	waitFile(t, path, "contain "+want, func(b string) bool { return strings.Contains(b, want) })
}

// waitFile waits up to a minute for the content of path to satisfy ok
// (what says what it must do, for the failure).
func waitFile(t *testing.T, path, what string, ok func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		b, err := os.ReadFile(path)
		if err == nil && ok(string(b)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %q (%v), want it to %s", path, b, err, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// backupStore copies srv's store directory, with srv stopped for the copy
// and running again after it, and returns the copy's path.
func backupStore(t *testing.T, srv *natstest.Server) string {
	t.Helper()
	backup := filepath.Join(t.TempDir(), "store")
	srv.Shutdown()
	cpDir(t, srv.StoreDir(), backup)
	srv.Start()
	return backup
}

// restoreStore stops srv and replaces its store directory with the copy
// backupStore made; the caller starts a server on it.
func restoreStore(t *testing.T, srv *natstest.Server, backup string) {
	t.Helper()
	srv.Shutdown()
	if err := os.RemoveAll(srv.StoreDir()); err != nil {
		t.Fatal(err)
	}
	cpDir(t, backup, srv.StoreDir())
}

// cpDir copies the directory src to dst (which must not exist).
func cpDir(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v %s", src, dst, err, out)
	}
}

// A delete that waits in a failing batch (beside a value over
// max_file_size) is lost with the server's store, restored from a copy
// taken before the deleted key was even put; the agent is SIGKILLed
// meanwhile, and the next write takes the lost put's revision for another
// key. The fold held the delete (the key gone) past its cursor, so neither
// the fold nor the bucket holds the key, and only the folding mark set
// before the delete was folded makes the restarted agent resync and remove
// the file (simulator seed 203687).
func TestADeleteLostWithARestoredStoreIsCaught(t *testing.T) {
	srv := natstest.Run(t)
	dir := filesAgentDir(t)
	putRev(t, srv.URL(), "files.a", "v1")
	cfg := filesAgentConfig(t, dir, srv.URL(), `limits { max_file_size = "16" }`, "")
	agent := startSlipagent(t, dir, "run", "-config", cfg)
	waitStatus(t, "-config", cfg)

	backup := backupStore(t, srv)
	putAtRev(t, srv.URL(), "files.c", "v1", 2)
	waitFileHolds(t, filepath.Join(dir, "out", "c"), "v1")
	putAtRev(t, srv.URL(), "files.big", "more than sixteen bytes", 3)
	waitStatusFailing(t, cfg, "failing", "max_file_size")
	if code, _, errOut := runCmd(t, "kv", "-server", srv.URL(), "delete", "cfg", "files.c"); code != exitOK {
		t.Fatalf("kv delete: %s", errOut)
	}
	// The delete joined the failing batch: marked folding before it was
	// folded.
	waitStateHolds(t, filepath.Join(dir, "data", "watches", "cfg", "state.json"), `"folding"`)
	agent.stop(t, syscall.SIGKILL)

	restoreStore(t, srv, backup)
	srv.Start()
	putAtRev(t, srv.URL(), "files.d", "v1", 2)
	agent = startSlipagent(t, dir, "run", "-config", cfg)
	waitFileHolds(t, filepath.Join(dir, "out", "d"), "v1")
	if got := waitStatus(t, "-config", cfg); !strings.Contains(got, "ready") {
		t.Errorf("status after the restore:\n%s\nlog:\n%s", got, agent.output())
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "c")); !os.IsNotExist(err) {
		t.Errorf("out/c, whose key the restored bucket never had, is still there (%v); log:\n%s", err, agent.output())
	}
}
