package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// bucket is the KV bucket the fleet watches.
const bucket = "fleet"

// writerName is the name of the benchmark's own connection.
const writerName = "fleetbench-writer"

// writer is the benchmark's connection: it fills and writes the bucket and
// reads its stream's state.
type writer struct {
	nc *nats.Conn
	js jetstream.JetStream
	kv jetstream.KeyValue
}

// dial connects to the servers urls (reconnecting forever) and creates the
// bucket with replicas copies, retrying while a cluster cannot place it yet.
func dial(ctx context.Context, urls []string, replicas int) (*writer, error) {
	servers := strings.Join(urls, ",")
	nc, err := nats.Connect(servers, nats.Name(writerName), nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(func(int) time.Duration { return 50 * time.Millisecond }))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", servers, err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		nc.Close()
		return nil, err
	}
	w := &writer{nc: nc, js: js}
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		w.kv, err = js.CreateKeyValue(actx, jetstream.KeyValueConfig{Bucket: bucket, History: 1, Replicas: replicas})
		cancel()
		if err == nil {
			return w, nil
		}
		if attempt == 60 || ctx.Err() != nil {
			nc.Close()
			return nil, fmt.Errorf("create bucket %s (%d replicas): %w", bucket, replicas, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (w *writer) close() { w.nc.Close() }

// fill writes keys 0..k-1 with one asynchronous publisher and returns the
// bucket's last revision once every put is acknowledged.
func (w *writer) fill(ctx context.Context, k int) (uint64, error) {
	for i := range k {
		if _, err := w.js.PublishAsync(fmt.Sprintf("$KV.%s.k%07d", bucket, i), fmt.Appendf(nil, "v%d", i),
			jetstream.WithStallWait(time.Minute)); err != nil {
			return 0, fmt.Errorf("publish to bucket %s: %w", bucket, err)
		}
	}
	select {
	case <-w.js.PublishAsyncComplete():
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	info, err := w.streamInfo(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

// probe puts a new value to key "probe", retrying each second-bounded
// attempt until one is acknowledged, and returns its revision and when
// the acknowledgement came.
func (w *writer) probe(ctx context.Context, value string) (uint64, time.Time, error) {
	for {
		actx, cancel := context.WithTimeout(ctx, time.Second)
		rev, err := w.kv.Put(actx, "probe", []byte(value))
		cancel()
		if err == nil {
			return rev, time.Now(), nil
		}
		if ctx.Err() != nil {
			return 0, time.Time{}, fmt.Errorf("put to bucket %s: %w", bucket, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// streamInfo is the state of the bucket's stream, retried while the
// stream has no leader.
func (w *writer) streamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	var err error
	for range 30 {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		var s jetstream.Stream
		var info *jetstream.StreamInfo
		if s, err = w.js.Stream(actx, "KV_"+bucket); err == nil {
			info, err = s.Info(actx)
		}
		cancel()
		if err == nil {
			return info, nil
		}
		if ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil, fmt.Errorf("stream info of bucket %s: %w", bucket, err)
}

// consumers is the number of consumers on the bucket's stream.
func (w *writer) consumers(ctx context.Context) (int, error) {
	info, err := w.streamInfo(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Consumers, nil
}

// consumerSettle bounds the wait for the consumers an agent replaced to
// go: the agents delete them in the background, and after a leader loss
// the delete waits for the meta layer's new leader. A consumer left past
// it is a leak.
const consumerSettle = 30 * time.Second

// settledConsumers is the number of consumers on the bucket's stream once
// it is down to want, or when consumerSettle has passed.
func (w *writer) settledConsumers(ctx context.Context, want int) (int, error) {
	deadline := time.Now().Add(consumerSettle)
	for {
		n, err := w.consumers(ctx)
		if err != nil || n <= want || time.Now().After(deadline) {
			return n, err
		}
		select {
		case <-ctx.Done():
			return n, nil
		case <-time.After(250 * time.Millisecond):
		}
	}
}
