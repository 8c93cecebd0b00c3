package natskv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
)

func TestMapErr(t *testing.T) {
	api := func(code jetstream.ErrorCode) error {
		return fmt.Errorf("publish: %w", &jetstream.APIError{Code: 400, ErrorCode: code, Description: "x"})
	}
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"key not found", jetstream.ErrKeyNotFound, kvcore.ErrNotFound},
		{"key deleted", jetstream.ErrKeyDeleted, kvcore.ErrNotFound},
		{"invalid key", jetstream.ErrInvalidKey, kvcore.ErrInvalidKey},
		{"bucket full (10077)", api(codeStoreFailed), kvcore.ErrBucketFull},
		{"wrong last sequence (10071)", api(codeWrongLastSequence), kvcore.ErrRevisionMismatch},
		{"wrong last sequence, replicated (10164)", api(codeWrongLastSeqR), kvcore.ErrRevisionMismatch},
		{"key exists", jetstream.ErrKeyExists, kvcore.ErrRevisionMismatch},
		{"closed", nats.ErrConnectionClosed, kvcore.ErrNotConnected},
		{"deadline", context.DeadlineExceeded, kvcore.ErrTimeout},
		{"nats timeout", nats.ErrTimeout, kvcore.ErrTimeout},
	}
	for _, tc := range tests {
		if got := mapErr(tc.err); !errors.Is(got, tc.want) {
			t.Errorf("%s: mapErr = %v, want %v", tc.name, got, tc.want)
		}
	}
	if mapErr(nil) != nil {
		t.Error("mapErr(nil) != nil")
	}
	if got := mapErr(context.Canceled); errors.Is(got, kvcore.ErrTimeout) || !errors.Is(got, context.Canceled) {
		t.Errorf("cancellation mapped to %v", got)
	}
	if got := mapErr(context.DeadlineExceeded); !errors.Is(got, context.DeadlineExceeded) {
		t.Errorf("the deadline is lost in %v", got)
	}
}

// TestKVErrorsSayNATSOnce: a publish the server rejects comes from nats.go
// as "nats: nats: API error: …"; the store's errors say "nats:" once.
func TestKVErrorsSayNATSOnce(t *testing.T) {
	s := openStore(t, connect(t, fastOpts(natstest.Run(t).URL())), kvcore.StoreConfig{})
	ctx := testCtx(t)
	v, err := s.Put(ctx, "k", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "k", []byte("2")); err != nil {
		t.Fatal(err)
	}
	_, err = s.Update(ctx, "k", []byte("3"), v)
	if !errors.Is(err, kvcore.ErrRevisionMismatch) || strings.Contains(err.Error(), "nats: nats:") {
		t.Errorf("update at an old revision: %v; want a revision mismatch saying nats: once", err)
	}
	_, err = s.Create(ctx, "k", []byte("4"))
	if !errors.Is(err, kvcore.ErrAlreadyExists) || strings.Contains(err.Error(), "nats: nats:") {
		t.Errorf("create of an existing key: %v; want it to exist, saying nats: once", err)
	}
}
