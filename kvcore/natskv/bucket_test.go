package natskv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/internal/logtest"
	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
)

// Ports of upstream raw_create_* (spec §5.2, §11.F 93–100).
func TestClassifyStreamCreate(t *testing.T) {
	tests := []struct {
		name  string
		reply string
		want  createOutcome
		code  int
		desc  string
	}{
		{"success has no error", `{"type":"io.nats.jetstream.api.v1.stream_create_response","config":{"name":"KV_certs"}}`, createCreated, 0, ""},
		{"swallows stream already exists", `{"error":{"code":400,"err_code":10058,"description":"stream name already in use"}}`, createExists, 0, ""},
		{"swallows stream limit", `{"error":{"code":400,"description":"maximum number of streams reached"}}`, createLimit, 0, ""},
		{"propagates unknown error", `{"error":{"code":403,"description":"insufficient permissions"}}`, createFailed, 403, "insufficient permissions"},
		{"400 without stream limit is fatal", `{"error":{"code":400,"description":"invalid stream config"}}`, createFailed, 400, "invalid stream config"},
		{"unparseable payload is treated as success", `not json at all`, createUnreadable, 0, ""},
		{"already exists when 10058 is in the code field", `{"error":{"code":10058,"description":"stream name already in use"}}`, createExists, 0, ""},
		{"error without code defaults to zero", `{"error":{"description":"mystery"}}`, createFailed, 0, "mystery"},
		{"error without description", `{"error":{"code":500}}`, createFailed, 500, "unknown error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := classifyStreamCreate([]byte(tc.reply))
			if got != tc.want {
				t.Fatalf("outcome = %v, want %v", got, tc.want)
			}
			if tc.want != createFailed {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			var ce *streamCreateError
			if !errors.As(err, &ce) || ce.Code != tc.code || ce.Description != tc.desc {
				t.Fatalf("error = %v, want code %d %q", err, tc.code, tc.desc)
			}
		})
	}
}

func streamConfig(t *testing.T, js jetstream.JetStream, bucket string) jetstream.StreamConfig {
	t.Helper()
	st, err := js.Stream(testCtx(t), streamName(bucket))
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().Config
}

func TestBucketDefaults(t *testing.T) {
	srv := natstest.Run(t)
	c := connect(t, fastOpts(srv.URL()))
	_, js := rawJS(t, srv.URL())

	s := openStore(t, c, kvcore.StoreConfig{})
	cfg := streamConfig(t, js, s.bucket)
	if cfg.MaxBytes != DefaultMaxBytes || cfg.MaxMsgsPerSubject != 1 || cfg.Discard != jetstream.DiscardNew ||
		cfg.Storage != jetstream.FileStorage || cfg.Replicas != 1 || cfg.MaxAge != 0 {
		t.Fatalf("default bucket config = %+v", cfg)
	}
	if cfg.AllowMsgTTL || cfg.SubjectDeleteMarkerTTL != 0 {
		t.Fatalf("a bucket without max age got delete markers: %+v", cfg)
	}

	s = openStore(t, c, kvcore.StoreConfig{History: 7, MaxAge: time.Hour, MaxBytes: -1, Storage: kvcore.StorageMemory})
	cfg = streamConfig(t, js, s.bucket)
	if cfg.MaxBytes != -1 || cfg.MaxMsgsPerSubject != 7 || cfg.MaxAge != time.Hour || cfg.Storage != jetstream.MemoryStorage {
		t.Fatalf("bucket config = %+v", cfg)
	}
	if !cfg.AllowMsgTTL || cfg.SubjectDeleteMarkerTTL != time.Hour {
		t.Fatalf("a bucket with max age has no delete markers: ttl %v", cfg.SubjectDeleteMarkerTTL)
	}

	_, err := c.Store(testCtx(t), kvcore.StoreConfig{Bucket: uniqueBucket(), History: 65})
	wantErr(t, "History 65", err, kvcore.ErrInvalidConfig)
	_, err = c.Store(testCtx(t), kvcore.StoreConfig{Bucket: uniqueBucket(), Replicas: -1})
	wantErr(t, "Replicas -1", err, kvcore.ErrInvalidConfig)
	for _, name := range []string{"", "a.b", "a b", "a*"} {
		_, err := c.Store(testCtx(t), kvcore.StoreConfig{Bucket: name})
		wantErr(t, "bucket "+name, err, kvcore.ErrInvalidBucket)
	}
}

// Port of upstream discard_policy_old_evicts_default_rejects (§11.I 173):
// discard old goes through the raw stream create.
func TestDiscardPolicyAtCreation(t *testing.T) {
	srv := natstest.Run(t)
	c := connect(t, fastOpts(srv.URL()))
	_, js := rawJS(t, srv.URL())
	old := openStore(t, c, kvcore.StoreConfig{Discard: kvcore.DiscardOld, MaxBytes: 1 << 20})
	if d := streamConfig(t, js, old.bucket).Discard; d != jetstream.DiscardOld {
		t.Fatalf("discard old bucket has discard %v", d)
	}
	nw := openStore(t, c, kvcore.StoreConfig{})
	if d := streamConfig(t, js, nw.bucket).Discard; d != jetstream.DiscardNew {
		t.Fatalf("default bucket has discard %v", d)
	}
}

// An existing bucket is used as it is; the config is never reconciled.
func TestExistingBucketIsNotReconciled(t *testing.T) {
	srv := natstest.Run(t)
	c := connect(t, fastOpts(srv.URL()))
	_, js := rawJS(t, srv.URL())
	ctx := testCtx(t)
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "legacy", History: 5, MaxBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	before := streamConfig(t, js, "legacy")
	s := openStore(t, c, kvcore.StoreConfig{Bucket: "legacy", History: 1, MaxAge: time.Hour, Discard: kvcore.DiscardOld, MaxBytes: 2 << 20})
	after := streamConfig(t, js, "legacy")
	if after.MaxMsgsPerSubject != before.MaxMsgsPerSubject || after.MaxAge != 0 || after.Discard != before.Discard || after.MaxBytes != before.MaxBytes {
		t.Fatalf("existing bucket changed from %+v to %+v", before, after)
	}
	// Port of store_with_config_is_idempotent (§11.I 163).
	again := openStore(t, c, kvcore.StoreConfig{Bucket: "legacy", History: 1})
	mustPut(t, s, "k", "1")
	e, err := again.Get(ctx, "k")
	if err != nil || string(e.Value) != "1" {
		t.Fatalf("read through a second handle = %+v, %v", e, err)
	}
}

// When nats.go's KV create fails, the raw stream create makes the same
// bucket.
func TestRawCreateFallback(t *testing.T) {
	srv := natstest.Run(t)
	c := connect(t, fastOpts(srv.URL()))
	_, js := rawJS(t, srv.URL())
	calls := 0
	c.createKV = func(context.Context, jetstream.JetStream, jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
		calls++
		return nil, errors.New("refused by a picky account")
	}
	s := openStore(t, c, kvcore.StoreConfig{History: 3, MaxAge: time.Minute})
	if calls != 1 {
		t.Fatalf("KV create called %d times", calls)
	}
	cfg := streamConfig(t, js, s.bucket)
	want, _ := specOf(kvcore.StoreConfig{Bucket: s.bucket, History: 3, MaxAge: time.Minute})
	wcfg := want.streamConfig()
	if cfg.MaxMsgsPerSubject != 3 || cfg.MaxAge != time.Minute || cfg.MaxBytes != DefaultMaxBytes ||
		cfg.Discard != jetstream.DiscardNew || !cfg.AllowRollup || !cfg.DenyDelete || !cfg.AllowDirect ||
		cfg.SubjectDeleteMarkerTTL != time.Minute || cfg.Duplicates != wcfg.Duplicates {
		t.Fatalf("raw-created bucket = %+v", cfg)
	}
	// The store works like any other.
	v := mustPut(t, s, "k", "1")
	e, err := s.Get(testCtx(t), "k")
	if err != nil || rev(e.Version) != v {
		t.Fatalf("get = %+v, %v", e, err)
	}
	// A second open finds it without creating.
	openStore(t, c, kvcore.StoreConfig{Bucket: s.bucket})
	if calls != 1 {
		t.Fatalf("KV create called again for an existing bucket")
	}
}

// Hosted accounts (Synadia Cloud) require max_bytes on every stream; the
// default bucket has one.
func TestMaxBytesRequiredAccount(t *testing.T) {
	acc := natstest.Operator(t, natstest.MaxBytesRequired())
	srv := natstest.Run(t, acc.Option)
	o := fastOpts(srv.URL())
	o.Creds = base64Std(acc.Creds)
	c := connect(t, o)
	s := openStore(t, c, kvcore.StoreConfig{})
	mustPut(t, s, "k", "1")
	_, err := c.Store(testCtx(t), kvcore.StoreConfig{Bucket: uniqueBucket(), MaxBytes: -1})
	wantErr(t, "unlimited bucket on a max-bytes-required account", err, kvcore.ErrConnectionFailed)
}

// A bucket created elsewhere with a max age but no delete markers expires
// keys without telling watches; the resume window check still catches it
// for a resumed watch. This pins what the package documentation says. A
// watch starting on it warns; writing to it does not (the agent's report
// bucket, which nothing watches, warned at every start).
func TestExpiryWithoutMarkers(t *testing.T) {
	srv := natstest.Run(t)
	var logs logtest.Buffer
	o := fastOpts(srv.URL())
	o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	c := connect(t, o)
	_, js := rawJS(t, srv.URL())
	ctx := testCtx(t)
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "nomarkers", TTL: time.Second}); err != nil {
		t.Fatal(err)
	}
	const warning = "no delete-marker TTL"
	s := openStore(t, c, kvcore.StoreConfig{Bucket: "nomarkers"})
	mustPut(t, s, "written", "0")
	if logs.Count(warning) != 0 {
		t.Errorf("opening and writing the bucket warned:\n%s", logs.String())
	}
	waitFor(t, 10*time.Second, "expiry of written", func() bool { // the watch below starts on an empty bucket
		_, err := s.Get(ctx, "written")
		return errors.Is(err, kvcore.ErrNotFound)
	})
	// The caller's attributes (WithLogAttrs) name the watch in its lines.
	w, err := s.Watch(WithLogAttrs(ctx, "watch", "files"), kvcore.AllKeys(), kvcore.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if logs.Count(warning) != 1 || logs.Count(" watch=files max_age=") != 1 {
		t.Errorf("a watch of the bucket did not warn once, naming the watch:\n%s", logs.String())
	}
	if ev := next(t, w, 5*time.Second); !ev.Synced {
		t.Fatalf("first event %+v", ev)
	}
	r := mustPut(t, s, "k", "1")
	if ev := next(t, w, 5*time.Second); ev.Key != "k" {
		t.Fatalf("event %+v", ev)
	}
	waitFor(t, 10*time.Second, "expiry", func() bool {
		_, err := s.Get(ctx, "k")
		return errors.Is(err, kvcore.ErrNotFound)
	})
	quiet(t, w, 300*time.Millisecond) // no event for the expiry
	mustPut(t, s, "later", "2")
	if ev := next(t, w, 5*time.Second); ev.Key != "later" {
		t.Fatalf("event %+v", ev)
	}
	// A watch resuming from before the expiry cannot be served.
	waitFor(t, 10*time.Second, "expiry of later", func() bool {
		_, err := s.Get(ctx, "later")
		return errors.Is(err, kvcore.ErrNotFound)
	})
	_, err = s.Watch(ctx, kvcore.AllKeys(), kvcore.RevisionCursor(r))
	wantErr(t, "resume across an expiry without markers", err, kvcore.ErrCursorExpired)
}

// Port of purge_reclaims_bytes (§11.F 111).
func TestPurgeReclaimsBytes(t *testing.T) {
	srv := natstest.Run(t)
	c := connect(t, fastOpts(srv.URL()))
	_, js := rawJS(t, srv.URL())
	s := openStore(t, c, kvcore.StoreConfig{Bucket: "purge"})
	ctx := testCtx(t)
	value := bytes.Repeat([]byte("x"), 4096)
	for i := range 50 {
		if _, err := s.Put(ctx, fmt.Sprintf("k%d", i), value); err != nil {
			t.Fatal(err)
		}
	}
	size := func() uint64 {
		st, err := js.Stream(ctx, "KV_purge")
		if err != nil {
			t.Fatal(err)
		}
		return st.CachedInfo().State.Bytes
	}
	before := size()
	for i := range 25 {
		if err := s.Purge(ctx, fmt.Sprintf("k%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 2*time.Second, "bytes reclaimed", func() bool { return size() < before })
	if err := s.Purge(ctx, "k0"); err != nil {
		t.Fatalf("purging a purged key: %v", err)
	}
}

func FuzzClassifyStreamCreate(f *testing.F) {
	f.Add([]byte(`{"error":{"code":400,"err_code":10058,"description":"stream name already in use"}}`))
	f.Add([]byte(`{"error":{"code":400,"description":"maximum number of streams reached"}}`))
	f.Add([]byte(`{"config":{"name":"KV_x"}}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, reply []byte) {
		outcome, err := classifyStreamCreate(reply)
		if (outcome == createFailed) != (err != nil) {
			t.Fatalf("outcome %v with error %v", outcome, err)
		}
	})
}

// A write to a bucket deleted under the handle fails with ErrBucketNotFound:
// nothing answers it, and the bucket's stream is gone. (Without the check it
// would retry until the timeout and fail with ErrTimeout.)
func TestWriteToDeletedBucket(t *testing.T) {
	srv := natstest.Run(t)
	o := fastOpts(srv.URL())
	o.Timeout = time.Minute
	c := connect(t, o)
	_, js := rawJS(t, srv.URL())
	s := openStore(t, c, kvcore.StoreConfig{})
	mustPut(t, s, "k", "1")
	if err := js.DeleteKeyValue(testCtx(t), s.bucket); err != nil {
		t.Fatal(err)
	}
	for name, write := range map[string]func() error{
		"put":    func() error { _, err := s.Put(testCtx(t), "k", []byte("2")); return err },
		"create": func() error { _, err := s.Create(testCtx(t), "new", []byte("2")); return err },
	} {
		if err := write(); !errors.Is(err, kvcore.ErrBucketNotFound) {
			t.Errorf("%s to a deleted bucket = %v, want ErrBucketNotFound", name, err)
		}
	}
}

// A bucket created right after the account's last stream was deleted is
// created: the server removes that stream's directories in the background
// after it answers the delete, and a create can find them gone under it
// ("error creating store for stream"). Each round races it once, with both
// kinds of create; without the retry one run in five to thirteen failed
// here (TestStoreRaced covers what is tried again deterministically).
func TestCreateRightAfterTheLastStreamIsDeleted(t *testing.T) {
	srv := natstest.Run(t)
	c := connect(t, fastOpts(srv.URL()))
	_, js := rawJS(t, srv.URL())
	for _, discard := range []kvcore.DiscardPolicy{kvcore.DiscardNew, kvcore.DiscardOld} {
		cfg := kvcore.StoreConfig{Bucket: uniqueBucket(), Discard: discard}
		for range 60 {
			s := openStore(t, c, cfg)
			mustPut(t, s, "k", "1")
			if err := js.DeleteKeyValue(testCtx(t), cfg.Bucket); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// A create is tried again only when the server failed making the stream's
// store, through either kind of create; code 10049 with another reason is
// a real failure.
func TestStoreRaced(t *testing.T) {
	raw := func(reply string) error {
		_, err := classifyStreamCreate([]byte(reply))
		return err
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"KV create, store", &jetstream.APIError{Code: 500, ErrorCode: 10049, Description: "error creating store for stream"}, true},
		{"KV create, wrapped", fmt.Errorf("create: %w", &jetstream.APIError{Code: 500, ErrorCode: 10049, Description: "error creating store for stream"}), true},
		{"KV create, bad config", &jetstream.APIError{Code: 500, ErrorCode: 10049, Description: "subject transform source is invalid"}, false},
		{"KV create, other code", &jetstream.APIError{Code: 500, ErrorCode: 10077, Description: "error creating store for stream"}, false},
		{"raw create, store", raw(`{"error":{"code":500,"err_code":10049,"description":"error creating store for stream"}}`), true},
		{"raw create, bad config", raw(`{"error":{"code":500,"err_code":10049,"description":"mirror filter is invalid"}}`), false},
		{"raw create, no err_code", raw(`{"error":{"code":500,"description":"error creating store for stream"}}`), false},
		{"not an API error", errors.New("error creating store for stream"), false},
	} {
		if got := storeRaced(tc.err); got != tc.want {
			t.Errorf("%s: storeRaced(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
