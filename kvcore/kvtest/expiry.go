package kvtest

import (
	"bytes"
	"errors"
	"fmt"
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
