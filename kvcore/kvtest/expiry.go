package kvtest

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
)

func (s *suite) expiryCases() []testCase {
	return []testCase{
		{"HistoryEviction", s.testHistoryEviction},
		{"MaxAge", s.testMaxAge},
		{"MaxBytesDiscardNew", s.testDiscardNew},
		{"MaxBytesDiscardOld", s.testDiscardOld},
		{"WatchOverrunByRetention", s.testWatchOverrun},
		{"WatchLagsBehindBusyKeys", s.testWatchLagsBehindBusyKeys},
	}
}

func (s *suite) testHistoryEviction(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{History: 2})
	v1 := s.put(t, st, "k", "1")
	v2 := s.put(t, st, "k", "2")
	s.put(t, st, "k", "3")
	s.put(t, st, "k", "4")
	// Only 3 and 4 are kept: resuming after 1 would skip 2.
	_, err := st.Watch(s.ctx(t), kvcore.AllKeys(), kvcore.CursorAt(v1))
	wantErr(t, "watch from an evicted revision", err, kvcore.ErrCursorExpired)
	r := s.watch(t, st, kvcore.AllKeys(), kvcore.CursorAt(v2))
	want(t, r.untilSynced(), "put k=3", "put k=4")
	r = s.watch(t, st, kvcore.AllKeys(), kvcore.Cursor{})
	want(t, r.untilSynced(), "put k=4")
}

// Expiry by max age is visible: the watch sees a purge of the key.
func (s *suite) testMaxAge(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{MaxAge: time.Second})
	ctx := s.ctx(t)
	r := s.watch(t, st, kvcore.AllKeys(), kvcore.Cursor{})
	want(t, r.untilSynced())
	s.put(t, st, "k", "1")
	want(t, r.updates(1), "put k=1")
	want(t, r.updates(1), "purge k")
	_, err := st.Get(ctx, "k")
	wantErr(t, "get of an expired key", err, kvcore.ErrNotFound)
	keys, _ := s.scanned(t, st, "")
	equal(t, "keys after expiry", keys)
}

const (
	fullBucket = 4096
	valueSize  = 512
	maxPuts    = 64 // 32 KiB: far more than fits
)

func (s *suite) testDiscardNew(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{MaxBytes: fullBucket})
	ctx := s.ctx(t)
	value := bytes.Repeat([]byte("x"), valueSize)
	var written []string
	for i := range maxPuts {
		key := fmt.Sprintf("k%02d", i)
		_, err := st.Put(ctx, key, value)
		if errors.Is(err, kvcore.ErrBucketFull) {
			break
		}
		noErr(t, "put "+key, err)
		written = append(written, key)
	}
	if len(written) == 0 || len(written) == maxPuts {
		t.Fatalf("%d puts of %d bytes into a %d-byte bucket succeeded", len(written), valueSize, fullBucket)
	}
	for _, key := range written {
		_, err := st.Get(ctx, key)
		noErr(t, "get "+key+" from a full bucket", err)
	}
}

func (s *suite) testDiscardOld(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{MaxBytes: fullBucket, Discard: kvcore.DiscardOld})
	ctx := s.ctx(t)
	value := bytes.Repeat([]byte("x"), valueSize)
	var first kvcore.Version
	for i := range maxPuts {
		v, err := st.Put(ctx, fmt.Sprintf("k%02d", i), value)
		noErr(t, "put into a bucket that discards old records", err)
		if i == 0 {
			first = v
		}
	}
	_, err := st.Get(ctx, "k00")
	wantErr(t, "get of an evicted key", err, kvcore.ErrNotFound)
	_, err = st.Get(ctx, fmt.Sprintf("k%02d", maxPuts-1))
	noErr(t, "get of the newest key", err)
	_, err = st.Watch(ctx, kvcore.AllKeys(), kvcore.CursorAt(first))
	wantErr(t, "watch from an evicted revision", err, kvcore.ErrCursorExpired)
}

// A whole-bucket watch that falls behind after Synced while discard-old
// evicts records it has not delivered fails with ErrCursorExpired, from a
// cursor or from a state sync, instead of skipping them. (Every record
// is a new key, so none was superseded: each gap is a loss.)
func (s *suite) testWatchOverrun(t *testing.T) {
	for _, from := range []string{"cursor", "state sync"} {
		t.Run(from, func(t *testing.T) {
			st := s.open(t, kvcore.StoreConfig{MaxBytes: overrunBucket, Discard: kvcore.DiscardOld})
			ctx := s.ctx(t)
			anchor := s.put(t, st, "anchor", "a")
			prev, ok := anchor.Revision()
			if !ok {
				t.Skip("backend versions are not revisions")
			}
			cursor := kvcore.CursorAt(anchor)
			if from == "state sync" {
				cursor = kvcore.Cursor{}
			}
			w, err := st.Watch(ctx, kvcore.AllKeys(), cursor)
			noErr(t, "watch", err)
			defer w.Stop()
			r := &stream{t: t, w: w, wait: s.h.Wait}
			r.untilSynced()
			// Nobody reads while the bucket turns over many times.
			value := bytes.Repeat([]byte("v"), overrunValue)
			var last uint64
			for i := range overrunPuts {
				v, err := st.Put(ctx, fmt.Sprintf("k.%04d", i), value)
				noErr(t, "put", err)
				last, _ = v.Revision()
			}
			for ev := range w.Events() {
				rev, _ := ev.Version.Revision()
				if rev != prev+1 {
					t.Fatalf("revision %d delivered after %d: the watch skipped records retention removed", rev, prev)
				}
				prev = rev
			}
			if prev == last {
				t.Fatal("the watch delivered every record: it never fell behind retention")
			}
			wantErr(t, "watch overrun by retention", w.Err(), kvcore.ErrCursorExpired)
		})
	}
}

// A state sync that falls behind a few busy keys on a bucket that drops
// nothing but superseded records misses revisions, not keys: it ends with
// the last value of every key and no error, although the oldest record
// left is past what it skipped.
func (s *suite) testWatchLagsBehindBusyKeys(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{MaxBytes: -1})
	ctx := s.ctx(t)
	r := s.watch(t, st, kvcore.AllKeys(), kvcore.Cursor{})
	r.untilSynced()
	value := bytes.Repeat([]byte("v"), overrunValue)
	want := map[string]string{}
	for i := range overrunPuts {
		key := fmt.Sprintf("busy.%d", i%3)
		want[key] = fmt.Sprint(i)
		_, err := st.Put(ctx, key, append(value, want[key]...))
		noErr(t, "put", err)
	}
	got := map[string]string{}
	for !maps.Equal(got, want) {
		u := r.updates(1)[0]
		got[u.Key] = string(u.Value[overrunValue:])
	}
	noErr(t, "watch", r.w.Err())
}

// The overrun test writes 8 MiB through a 256 KiB bucket, far more than a
// watch buffers (NATS flow control stops a consumer a few MiB ahead).
const (
	overrunBucket = 256 << 10
	overrunValue  = 8 << 10
	overrunPuts   = 1024
)
