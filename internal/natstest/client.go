package natstest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStream connects a test to the server at url and returns its
// JetStream API; the connection (js.Conn()) closes when the test ends.
func JetStream(tb testing.TB, url string, opts ...nats.Option) jetstream.JetStream {
	tb.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return js
}

// CreateOrUpdateKeyValue creates or updates a bucket as nats.go does, and
// tries again (for up to createRaceTries) while the server answers
// "error creating store for stream": it removes the directories of an
// account's last deleted stream in the background, after it has answered
// the delete, so a create right behind a delete can find them gone under
// it.
func CreateOrUpdateKeyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	for tries := 1; ; tries++ {
		kv, err := js.CreateOrUpdateKeyValue(ctx, cfg)
		var apiErr *jetstream.APIError
		raced := errors.As(err, &apiErr) && apiErr.ErrorCode == streamCreateFailed && strings.Contains(apiErr.Description, storeFailed)
		if !raced || tries == createRaceTries {
			return kv, err
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return nil, errors.Join(err, ctx.Err())
		}
	}
}

// streamCreateFailed is JetStream's code for a stream create that failed,
// storeFailed the description of one that failed making the stream's
// store, and createRaceTries how often CreateOrUpdateKeyValue tries (5 s
// in all).
const (
	streamCreateFailed = 10049
	storeFailed        = "error creating store for stream"
	createRaceTries    = 100
)
