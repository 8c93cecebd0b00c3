package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/internal/natstest"
)

// Issue 7, case 1: a bucket deleted and re-created while the agent is
// stopped, with at least as many records as the saved cursor, is resynced
// from its current state, not resumed at cursor+1 of the new stream.
func TestBucketRecreatedWhileStoppedIsResynced(t *testing.T) {
	f := newFixture(t)
	for i := range 20 {
		f.put("cfg", fmt.Sprintf("files.k%02d.conf", i), "old")
	}
	a, stop := f.start(f.config(filesConfig))
	waitFor(t, "the first run", func() bool { return a.Ready() })
	stop()

	js := f.jetstream()
	if err := js.DeleteKeyValue(context.Background(), "cfg"); err != nil {
		t.Fatal(err)
	}
	// The new bucket holds new values at revisions 1-20, then passes the
	// old cursor (20): resuming at 21 would skip every new value.
	for i := range 20 {
		f.put("cfg", fmt.Sprintf("files.k%02d.conf", i), "new")
	}
	for range 5 {
		f.put("cfg", "files.extra.conf", "x")
	}

	a, stop = f.start(f.config(filesConfig))
	defer stop()
	waitFor(t, "the restart to catch up", func() bool { return a.Ready() && a.Status()[0].Revision == 25 })
	out := filepath.Join(f.dir, "out")
	for i := range 20 {
		if got := readFile(filepath.Join(out, fmt.Sprintf("k%02d.conf", i))); got != "new" {
			t.Fatalf("k%02d.conf = %q after the bucket was re-created, want new", i, got)
		}
	}
}

// Issue 7, case 2: an empty value is a live key with an empty file, through
// a restart (which reconciles the fold with the bucket's keys).
func TestEmptyValueSurvivesRestart(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "alpha")
	f.put("cfg", "files.empty", "")
	a, stop := f.start(f.config(filesConfig))
	waitFor(t, "the first run", func() bool { return a.Ready() })
	stop()
	last := f.put("cfg", "files.b.conf", "bravo")

	a, stop = f.start(f.config(filesConfig))
	defer stop()
	waitFor(t, "the restart to catch up", func() bool { s := a.Status()[0]; return s.Synced && s.Revision == last })
	path := filepath.Join(f.dir, "out", "empty")
	st, err := os.Stat(path)
	if err != nil || st.Size() != 0 {
		t.Fatalf("the empty value's file after a restart: %v, %v", st, err)
	}
}

// jetstream is a JetStream handle on the fixture's server, for what the KV
// contract does not do (deleting a bucket).
func (f *fixture) jetstream() jetstream.JetStream {
	f.t.Helper()
	return natstest.JetStream(f.t, f.srv.URL())
}
