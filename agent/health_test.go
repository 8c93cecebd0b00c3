package agent

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
