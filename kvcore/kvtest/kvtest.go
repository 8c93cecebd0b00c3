// Package kvtest is the conformance suite every [kvcore.Store] backend
// passes:
//
//	func TestConformance(t *testing.T) {
//		kvtest.Run(t, kvtest.Harness{
//			Open: func(t testing.TB, cfg kvcore.StoreConfig) kvcore.Store { … },
//			Interrupt: func(t testing.TB) { srv.Restart() },
//		})
//	}
//
// It covers every method's semantics: values, tombstones and markers, CAS
// conflicts, scans, state-sync and delta watches over the whole bucket, one
// prefix and several, scans and state syncs while the bucket is written,
// purge, expiry (history eviction, max age, max bytes with either discard
// policy), bucket identity, key history and, for backends with a
// connection, riding through its loss. Behaviour only one backend has (NATS clamping, markers,
// error codes) is tested in that backend's own package.
package kvtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// Harness is what the suite needs from a backend.
type Harness struct {
	// Open returns a store for a new, empty bucket created with cfg, whose
	// Bucket the suite sets (unique per call). Releasing it is the
	// harness's job (t.Cleanup). It is called from parallel subtests.
	Open func(t testing.TB, cfg kvcore.StoreConfig) kvcore.Store
	// Interrupt breaks the connection of every store to the backend and
	// restores it (for a server: a restart on the same address and data),
	// returning once the backend serves again. Nil for backends without a
	// connection: the reconnect tests then skip, saying so. It is never
	// called while other subtests run.
	Interrupt func(t testing.TB)
	// Recreate deletes st's bucket and creates it again, empty, under the
	// same name, as an operator may while a watcher is stopped. Nil when
	// the harness cannot: the identity test then stops short, saying so.
	Recreate func(t testing.TB, st kvcore.Store)
	// Wait bounds each wait for an event or condition (default 10 s).
	Wait time.Duration
}

// Run runs the whole suite as subtests of t.
func Run(t *testing.T, h Harness) {
	if h.Open == nil {
		t.Fatal("kvtest: Harness.Open is nil")
	}
	if h.Wait <= 0 {
		h.Wait = 10 * time.Second
	}
	s := &suite{h: h}
	t.Run("Parallel", func(t *testing.T) {
		for _, tc := range s.cases() {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.fn(t)
			})
		}
	})
	t.Run("Reconnect", s.reconnect)
}

type suite struct {
	h   Harness
	seq atomic.Int64
}

type testCase struct {
	name string
	fn   func(t *testing.T)
}

func (s *suite) cases() []testCase {
	var cs []testCase
	cs = append(cs, s.readWriteCases()...)
	cs = append(cs, s.scanCases()...)
	cs = append(cs, s.watchCases()...)
	cs = append(cs, s.expiryCases()...)
	cs = append(cs, s.identityCases()...)
	cs = append(cs, s.historyCases()...)
	return cs
}

// open returns a fresh store created with cfg.
func (s *suite) open(t testing.TB, cfg kvcore.StoreConfig) kvcore.Store {
	t.Helper()
	cfg.Bucket = fmt.Sprintf("kvtest%d_%d", time.Now().UnixNano()%1e6, s.seq.Add(1))
	return s.h.Open(t, cfg)
}

// ctx returns a context bounded by a generous multiple of the wait.
func (s *suite) ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 6*s.h.Wait)
	t.Cleanup(cancel)
	return ctx
}

func (s *suite) put(t testing.TB, st kvcore.Store, key, value string) kvcore.Version {
	t.Helper()
	v, err := st.Put(s.ctx(t), key, []byte(value))
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	if v.IsUnknown() {
		t.Fatalf("put %s returned the unknown version", key)
	}
	return v
}

func (s *suite) del(t testing.TB, st kvcore.Store, key string) {
	t.Helper()
	if err := st.Delete(s.ctx(t), key); err != nil {
		t.Fatalf("delete %s: %v", key, err)
	}
}

func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

func noErr(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// after reports whether version a is later than b. Versions of one bucket
// have one width and compare as big-endian byte strings.
func after(a, b kvcore.Version) bool { return bytes.Compare(a.Bytes(), b.Bytes()) > 0 }
