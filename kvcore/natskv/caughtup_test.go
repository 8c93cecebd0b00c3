package natskv

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
)

// A scan slower than the writers: while its consumer waits, a key is
// created (its record takes a slot the count at creation gave an old
// key) and an old key is updated (its counted record goes, the new one
// comes last). The updated key existed all along and is listed.
func TestScanListsKeyUpdatedMeanwhile(t *testing.T) {
	srv := natstest.Run(t)
	c := connect(t, fastOpts(srv.URL()))
	s := openStore(t, c, kvcore.StoreConfig{})
	for i := 1; i <= 5; i++ {
		mustPut(t, s, fmt.Sprintf("k%d", i), "v")
	}
	filters, _ := filterSubjects(s.pre, kvcore.AllKeys())
	pause := 3 * time.Second // the writes below land within it, however loaded the machine
	spec := consumerSpec{filters: filters, headersOnly: true, pauseUntil: time.Now().Add(pause)}
	written := make(chan struct{})
	go func() {
		defer close(written)
		time.Sleep(pause / 4)
		mustPut(t, s, "new", "v")
		mustPut(t, s, "k3", "v2")
	}()
	var keys []string
	st, err := s.streamState(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	err = s.scanOnce(testCtx(t), spec, st, func(uint64) {}, func(u kvcore.Update, _ *nats.Msg) {
		keys = append(keys, u.Key)
	})
	<-written
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	if want := []string{"k1", "k2", "k3", "k4", "k5", "new"}; !slices.Equal(keys, want) {
		t.Fatalf("scan listed %q, want %q", keys, want)
	}
}

// History > 1: a consumer delivering the last record of every key also
// counts removals of older revisions ahead of it, which it never meant to
// send, so its count runs out with last records still to come. Here, while
// it waits, discard-old evicts three older revisions of c (and the last
// record of x), and a is purged: the count reaches 0 at b, where the
// consumer then stalls on a's removed record with c still to come. Neither
// Keys nor a watch's Synced stops before c.
func TestListOfLastRecordsOutlivesItsCount(t *testing.T) {
	srv := natstest.Run(t)
	c := connect(t, fastOpts(srv.URL()))
	_, js := rawJS(t, srv.URL())
	for _, via := range []string{"watch", "keys"} {
		t.Run(via, func(t *testing.T) {
			s := openStore(t, c, kvcore.StoreConfig{History: 5, Discard: kvcore.DiscardOld, MaxBytes: -1})
			ctx := testCtx(t)
			value := strings.Repeat("v", 1000)
			for _, k := range []string{"x", "c", "c", "c", "b", "a", "c"} { // records 1…7
				mustPut(t, s, k, value)
			}
			// The bucket is full now: the next records evict the oldest.
			st, err := js.Stream(ctx, s.stream)
			if err != nil {
				t.Fatal(err)
			}
			cfg := st.CachedInfo().Config
			cfg.MaxBytes = int64(st.CachedInfo().State.Bytes)
			if _, err := js.UpdateStream(ctx, cfg); err != nil {
				t.Fatal(err)
			}
			removeAhead := func() {
				if err := s.Purge(ctx, "a"); err != nil { // its record 6 goes
					t.Error(err)
				}
				// 4½ records' worth: records 1 to 4 go.
				if _, err := s.Put(ctx, "z", []byte(strings.Repeat(value, 9)[:4500])); err != nil {
					t.Error(err)
				}
			}
			pause := 3 * time.Second // the removals land within it, however loaded the machine
			var keys []string
			switch via {
			case "watch":
				s.tuneWatch = func(w *watch) { w.pauseNext = pause }
				w, err := s.Watch(ctx, kvcore.AllKeys(), kvcore.Cursor{})
				if err != nil {
					t.Fatal(err)
				}
				defer w.Stop()
				removeAhead()
				for ev := next(t, w, eventWait); !ev.Synced; ev = next(t, w, eventWait) {
					keys = append(keys, ev.Key)
				}
			case "keys":
				filters, _ := filterSubjects(s.pre, kvcore.AllKeys())
				spec := consumerSpec{filters: filters, headersOnly: true, pauseUntil: time.Now().Add(pause)}
				go func() {
					time.Sleep(pause / 4)
					removeAhead()
				}()
				st, err := s.streamState(ctx)
				if err != nil {
					t.Fatal(err)
				}
				err = s.scanOnce(ctx, spec, st, func(uint64) {}, func(u kvcore.Update, _ *nats.Msg) {
					keys = append(keys, u.Key)
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			if !slices.Contains(keys, "b") || !slices.Contains(keys, "c") {
				t.Fatalf("%s: keys %q, want b and c", via, keys)
			}
		})
	}
}

// A key written while a scan runs is delivered again after its last
// record; the scan lists it once, with the newest value it saw.
func TestScanListsAKeyWrittenMeanwhileOnce(t *testing.T) {
	srv := natstest.Run(t)
	c := connect(t, fastOpts(srv.URL()))
	s := openStore(t, c, kvcore.StoreConfig{})
	ctx := testCtx(t)
	const n = 3000
	for i := range n {
		if _, err := s.Put(ctx, fmt.Sprintf("k%05d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	wrote := make(chan int)
	go func() { // k00000, the first key the scan delivers, keeps changing
		writes := 0
		defer func() { wrote <- writes }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Put(ctx, "k00000", []byte(fmt.Sprint(writes))); err == nil {
				writes++
			}
		}
	}()
	for range 5 {
		entries, err := s.Scan(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, e := range entries {
			if seen[e.Key] {
				t.Fatalf("scan lists %s twice", e.Key)
			}
			seen[e.Key] = true
		}
		if len(seen) != n {
			t.Fatalf("scan lists %d keys, want %d", len(seen), n)
		}
	}
	close(stop)
	if writes := <-wrote; writes == 0 {
		t.Fatal("no write ran during the scans")
	}
}

// newestPerKey keeps each key's last delivery, and drops a key whose last
// delivery removed it.
func TestNewestPerKey(t *testing.T) {
	found := []string{"a1", "b1", "c1", "a2", "", "c2"}
	keys := []string{"a", "b", "c", "a", "b", "c"}
	got := newestPerKey(found, keys, map[int]bool{4: true})
	if want := []string{"a2", "c2"}; !slices.Equal(got, want) {
		t.Errorf("newestPerKey = %q, want %q", got, want)
	}
}
