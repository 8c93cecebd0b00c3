package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// readyz fetches /readyz and returns its code and body.
func readyz(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// A watch whose consumer cannot be re-created after a server restart (the
// stream's max_consumers is reached) receives nothing while the loop above it
// still thinks it is caught up: health must say so, naming the limit, and
// recover once the limit is lifted.
func TestConsumerCapAfterRestartIsNotReady(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "1")
	a, _ := f.start(f.config(filesConfig))
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	waitFor(t, "the first sync", func() bool { return a.Ready() })

	ctx := context.Background()
	js := f.jetstream()
	setMaxConsumers := func(n int) {
		t.Helper()
		st, err := js.Stream(ctx, "KV_cfg")
		if err != nil {
			t.Fatal(err)
		}
		cfg := st.CachedInfo().Config
		cfg.MaxConsumers = n
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	// A durable consumer survives the restart and takes the only place;
	// the agent's (memory-backed, ordered) consumer does not.
	if _, err := js.CreateConsumer(ctx, "KV_cfg", jetstream.ConsumerConfig{Durable: "filler"}); err != nil {
		t.Fatal(err)
	}
	setMaxConsumers(1)
	f.srv.Restart()

	waitFor(t, "/readyz to report the consumer limit", func() bool {
		code, body := readyz(t, srv.URL)
		return code == http.StatusServiceUnavailable && strings.Contains(body, "maximum consumers")
	})
	s := a.Status()[0]
	if s.State != stateDetached || s.Healthy() {
		t.Fatalf("status while detached: %+v", s)
	}
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/healthz = %d while detached, want 503", resp.StatusCode)
	}

	setMaxConsumers(-1)
	waitFor(t, "/readyz to recover once the limit is lifted", func() bool {
		code, _ := readyz(t, srv.URL)
		return code == http.StatusOK
	})
	last := f.put("cfg", "files.a.conf", "after")
	waitFor(t, "the change made after recovery", func() bool { return a.Status()[0].Revision == last })
	resp, err = http.Get(srv.URL + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Watches []WatchStatus `json:"watches"`
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if w := st.Watches[0]; w.LastError != "" || !strings.Contains(w.LastFailure, "maximum consumers") || w.LastFailureAt.IsZero() {
		t.Errorf("/status after recovery: last_error %q, last_failure %q at %v", w.LastError, w.LastFailure, w.LastFailureAt)
	}
	// It names the limit and the remedy, not only the server's words.
	if w := st.Watches[0]; !strings.Contains(w.LastFailure, "the limit is the stream's max_consumers (1)") || !strings.Contains(w.LastFailure, "--max-consumers") {
		t.Errorf("/status last_failure %q does not name the stream's max_consumers and how to raise it", w.LastFailure)
	}
}

// sharedBucketConfig is two watches of the same bucket and prefix, one
// folding in memory and one on disk, each rendering into its own directory.
const sharedBucketConfig = `
data_dir = "$DIR/data"
nats { servers = ["$NATS"] }
plugin "files" {
  module = "$DIR/files.wasm"
  config = { prefix = "files." }
}
watch "fm" {
  bucket   = "rc"
  prefixes = ["files."]
  plugin   = "files"
  fold     = "memory"
  batch { window = "20ms" }
  output "files" { dir = "$DIR/out-fm" }
}
watch "fd" {
  bucket   = "rc"
  prefixes = ["files."]
  plugin   = "files"
  fold     = "disk"
  batch { window = "20ms" }
  output "files" { dir = "$DIR/out-fd" }
}
`

// Two watches of the same bucket and prefixes re-create their consumers
// side by side when the bucket is deleted and re-created: one's failed
// attempt (the terminal "re-created" one) must not leave the other, which
// resynced, detached. Each is ready again once its files match the bucket.
func TestSharedBucketRecreatedLeavesBothWatchesReady(t *testing.T) {
	f := newFixture(t)
	for i := range 5 {
		f.put("rc", fmt.Sprintf("files.k%d.conf", i), "old")
	}
	a, _ := f.start(f.config(sharedBucketConfig))
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	waitFor(t, "the first sync", func() bool { return a.Ready() })

	if err := f.jetstream().DeleteKeyValue(context.Background(), "rc"); err != nil {
		t.Fatal(err)
	}
	var last uint64
	for i := range 5 {
		last = f.put("rc", fmt.Sprintf("files.k%d.conf", i), "new")
	}
	rendered := func(name string) bool {
		for i := range 5 {
			if readFile(filepath.Join(f.dir, "out-"+name, fmt.Sprintf("k%d.conf", i))) != "new" {
				return false
			}
		}
		return true
	}
	waitFor(t, "both watches to render the re-created bucket", func() bool { return rendered("fm") && rendered("fd") })

	// Both have resynced: within a bounded wait, both are ready again.
	deadline := time.Now().Add(60 * time.Second) // waitFor's bound
	for {
		ready := true
		for _, s := range a.Status() {
			ready = ready && s.Ready && s.Revision == last
		}
		if code, _ := readyz(t, srv.URL); ready && code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			for _, s := range a.Status() {
				t.Errorf("watch %s after both resynced: state %s (%s), revision %d (want %d)", s.Name, s.State, s.Reason, s.Revision, last)
			}
			code, body := readyz(t, srv.URL)
			t.Fatalf("/readyz = %d %s after both watches resynced, want 200", code, strings.TrimSpace(body))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// And they stay ready as the bucket moves on.
	last = f.put("rc", "files.k0.conf", "later")
	waitFor(t, "both watches to apply a later change", func() bool {
		s := a.Status()
		return s[0].Revision == last && s[1].Revision == last
	})
	for _, s := range a.Status() {
		if !s.Ready || s.LastError != "" {
			t.Errorf("watch %s after a later change: state %s (%s), last_error %q", s.Name, s.State, s.Reason, s.LastError)
		}
	}
}
