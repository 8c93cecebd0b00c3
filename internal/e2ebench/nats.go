package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// bucket is the KV bucket every workload writes and both renderers render.
const bucket = "app"

// client is the benchmark's connection, used to write the workloads.
type client struct {
	nc *nats.Conn
	js jetstream.JetStream
	kv jetstream.KeyValue
}

func dial(url string) (*client, error) {
	nc, err := nats.Connect(url, nats.Name("e2ebench-load"))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", url, err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &client{nc: nc, js: js}, nil
}

// reset gives the workload an empty bucket (history 1).
func (c *client) reset(ctx context.Context) error {
	if err := c.js.DeleteKeyValue(ctx, bucket); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
		return fmt.Errorf("delete bucket %s: %w", bucket, err)
	}
	// The server may still be removing the deleted stream's store ("error
	// creating store for stream", 10049) when the create comes: try again.
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		var kv jetstream.KeyValue
		if kv, err = c.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, History: 1}); err == nil {
			c.kv = kv
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("create bucket %s: %w", bucket, err)
}

func key(i int) string { return fmt.Sprintf("k%07d", i) }

// value is the value of key i: its number, padded with 'x' to size bytes.
func value(i, size int) []byte {
	v := []byte(fmt.Sprintf("v%07d", i))
	for len(v) < size {
		v = append(v, 'x')
	}
	return v
}

// putSync writes keys 0..n-1 with conc writers doing acknowledged puts.
func (c *client) putSync(ctx context.Context, n, conc, size int) error {
	var wg sync.WaitGroup
	errs := make([]error, conc)
	for w := range conc {
		wg.Go(func() {
			for i := w; i < n && errs[w] == nil; i += conc {
				_, errs[w] = c.kv.Put(ctx, key(i), value(i, size))
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// putAsync writes keys 0..n-1 with one asynchronous JetStream publisher (at
// most 4096 unacknowledged; a full window waits for room) and waits for every
// acknowledgement.
func (c *client) putAsync(ctx context.Context, n, size int) error {
	for i := range n {
		if _, err := c.js.PublishAsync("$KV."+bucket+"."+key(i), value(i, size), jetstream.WithStallWait(time.Minute)); err != nil {
			return fmt.Errorf("publish %s: %w", key(i), err)
		}
	}
	select {
	case <-c.js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
