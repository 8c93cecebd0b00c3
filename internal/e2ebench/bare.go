package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/internal/atomicfile"
)

// The bare renderer runs as a child process of the benchmark (the same
// executable, selected by roleEnv), so that its cold start and RSS are
// measured as the agent's are.
const (
	roleEnv    = "E2EBENCH_ROLE"
	roleBare   = "bare"
	bareURLEnv = "E2EBENCH_NATS_URL"
	bareOutEnv = "E2EBENCH_OUT"
)

func runBareFromEnv() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := runBare(ctx, os.Getenv(bareURLEnv), bucket, os.Getenv(bareOutEnv))
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// runBare is the lower bound of a NATS KV renderer: it watches every key of
// the bucket and, once the initial values are in and then after every
// update, writes them all to out as sorted "key=value" lines with
// [atomicfile.WriteFile]. Updates already queued when a render starts are
// folded in first and share it.
func runBare(ctx context.Context, url, bucket, out string) error {
	nc, err := nats.Connect(url, nats.Name("e2ebench-bare"))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", bucket, err)
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch bucket %s: %w", bucket, err)
	}
	defer w.Stop()

	vals := map[string][]byte{}
	synced := false
	apply := func(e jetstream.KeyValueEntry, ok bool) error {
		switch {
		case !ok:
			return fmt.Errorf("watch of bucket %s closed", bucket)
		case e == nil:
			synced = true
		case e.Operation() == jetstream.KeyValuePut:
			vals[e.Key()] = e.Value()
		default:
			delete(vals, e.Key())
		}
		return nil
	}
	var buf bytes.Buffer
	var keys []string
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if err := apply(e, ok); err != nil {
				return err
			}
		}
	drain:
		for {
			select {
			case e, ok := <-w.Updates():
				if err := apply(e, ok); err != nil {
					return err
				}
			default:
				break drain
			}
		}
		if !synced {
			continue
		}
		keys = keys[:0]
		for k := range vals {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		buf.Reset()
		for _, k := range keys {
			buf.WriteString(k)
			buf.WriteByte('=')
			buf.Write(vals[k])
			buf.WriteByte('\n')
		}
		if err := atomicfile.WriteFile(out, buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("render %s: %w", out, err)
		}
	}
}
