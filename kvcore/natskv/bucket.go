package natskv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// Bucket defaults at creation.
const (
	// DefaultMaxBytes caps a bucket created with StoreConfig.MaxBytes 0.
	// Hosted NATS accounts (Synadia Cloud) refuse streams without a limit.
	DefaultMaxBytes = 10 << 20
	// minMarkerTTL is the smallest delete-marker TTL the server accepts.
	minMarkerTTL = time.Second
	// duplicateWindow is nats.go's KV default, capped by the max age.
	duplicateWindow = 2 * time.Minute
	// leaderPoll is how often a new replicated bucket is checked for a leader.
	leaderPoll = 50 * time.Millisecond
)

// createKeyValue is the default [Conn.createKV]: nats.go's KV create.
func createKeyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return js.CreateKeyValue(ctx, cfg)
}

// bucketSpec is a StoreConfig with the backend's defaults applied.
type bucketSpec struct {
	name      string
	history   uint8
	maxAge    time.Duration
	maxBytes  int64
	storage   jetstream.StorageType
	replicas  int
	discard   jetstream.DiscardPolicy
	markerTTL time.Duration // 0: no delete markers
}

func specOf(cfg kvcore.StoreConfig) (bucketSpec, error) {
	s := bucketSpec{name: cfg.Bucket, history: 1, maxAge: cfg.MaxAge, maxBytes: cfg.MaxBytes, replicas: max(cfg.Replicas, 1)}
	if cfg.History > 0 { // at most kvcore.MaxHistory (Validate)
		s.history = uint8(cfg.History)
	}
	if s.maxBytes == 0 {
		s.maxBytes = DefaultMaxBytes
	}
	if cfg.Storage == kvcore.StorageMemory {
		s.storage = jetstream.MemoryStorage
	}
	s.discard = jetstream.DiscardNew // not the zero value of jetstream.DiscardPolicy
	if cfg.Discard == kvcore.DiscardOld {
		s.discard = jetstream.DiscardOld
	}
	// Expired keys leave a purge marker that lives as long as values do, so
	// records leave the stream in revision order and the resume window
	// check sees every expiry a resumed watch missed.
	if s.maxAge > 0 {
		s.markerTTL = max(s.maxAge, minMarkerTTL)
	}
	return s, nil
}

func (s bucketSpec) keyValueConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:         s.name,
		History:        s.history,
		TTL:            s.maxAge,
		MaxBytes:       s.maxBytes,
		Storage:        s.storage,
		Replicas:       s.replicas,
		LimitMarkerTTL: s.markerTTL,
	}
}

// streamConfig is the stream nats.go's KV create would make, plus the
// discard policy its KV config cannot express.
func (s bucketSpec) streamConfig() jetstream.StreamConfig {
	dup := duplicateWindow
	if s.maxAge > 0 && s.maxAge < dup {
		dup = s.maxAge
	}
	return jetstream.StreamConfig{
		Name:                   streamName(s.name),
		Subjects:               []string{subjectPrefix(s.name) + ">"},
		Retention:              jetstream.LimitsPolicy,
		MaxMsgsPerSubject:      int64(s.history),
		MaxMsgs:                -1,
		MaxBytes:               s.maxBytes,
		MaxAge:                 s.maxAge,
		MaxMsgSize:             -1,
		MaxConsumers:           -1,
		Storage:                s.storage,
		Replicas:               s.replicas,
		Discard:                s.discard,
		Duplicates:             dup,
		AllowRollup:            true,
		DenyDelete:             true,
		AllowDirect:            true,
		AllowMsgTTL:            s.markerTTL > 0,
		SubjectDeleteMarkerTTL: s.markerTTL,
	}
}

// openBucket gets the bucket or creates it, and never changes an existing
// one:
//  1. look it up;
//  2. with discard "new", create it through nats.go's KV API;
//  3. otherwise, or if that failed, send the stream config straight to
//     $JS.API.STREAM.CREATE (the KV API cannot set discard "old", and some
//     hosted accounts refuse what it sends) and classify the reply;
//  4. look it up again, which is what makes trusting an unreadable reply safe.
func (c *Conn) openBucket(ctx context.Context, sess *session, cfg kvcore.StoreConfig) (jetstream.KeyValue, error) {
	spec, err := specOf(cfg)
	if err != nil {
		return nil, err
	}
	log := c.opts.Logger.With("bucket", cfg.Bucket)
	kv, err := c.lookupBucket(ctx, sess, spec)
	if err == nil {
		return kv, nil
	}
	if ctx.Err() != nil {
		return nil, mapErr(ctx.Err())
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		log.Warn("bucket lookup failed; trying to create it", "err", err)
	}
	for tries := 1; ; tries++ {
		kv, err := c.createBucket(ctx, sess, spec, log)
		if !storeRaced(err) || tries == storeRaceTries {
			return kv, err
		}
		select {
		case <-time.After(storeRacePause):
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (after %d tries to create the bucket; the last: %v)", mapErr(ctx.Err()), tries, err)
		}
	}
}

// storeRaceTries and storeRacePause bound the retries of a create that
// lost a race with the server's own clean-up of a deleted stream.
const (
	storeRaceTries = 10
	storeRacePause = 50 * time.Millisecond
)

// storeRaced reports whether a create failed because the server could not
// make the stream's store: it removes the directories of an account's last
// deleted stream in the background, after it has answered the delete, and
// a create right behind the delete can find them gone under it.
func storeRaced(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return int(apiErr.ErrorCode) == codeStreamCreate && strings.Contains(apiErr.Description, storeFailed)
	}
	var sce *streamCreateError
	return errors.As(err, &sce) && sce.ErrCode == codeStreamCreate && strings.Contains(sce.Description, storeFailed)
}

// storeFailed is the description of a create that failed making the
// stream's store (code 10049 also comes with others, such as a bad config).
const storeFailed = "error creating store for stream"

// createBucket is steps 2-4 of [Conn.openBucket].
func (c *Conn) createBucket(ctx context.Context, sess *session, spec bucketSpec, log *slog.Logger) (jetstream.KeyValue, error) {
	if spec.discard == jetstream.DiscardNew {
		tctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
		kv, err := c.createKV(tctx, sess.js, spec.keyValueConfig())
		cancel()
		if err == nil {
			return kv, c.awaitLeader(ctx, sess, spec)
		}
		if storeRaced(err) {
			return nil, err
		}
		log.Warn("KV create failed; trying a raw stream create", "err", err)
	}
	if err := c.rawCreate(ctx, sess, spec, log); err != nil {
		return nil, err
	}
	kv, err := c.lookupBucket(ctx, sess, spec)
	if err != nil {
		return nil, fmt.Errorf("get bucket after raw create: %w", mapErr(err))
	}
	return kv, c.awaitLeader(ctx, sess, spec)
}

// awaitLeader waits until a new replicated bucket's stream has elected a
// leader, so that the first write does not fail with "no response from
// stream".
func (c *Conn) awaitLeader(ctx context.Context, sess *session, spec bucketSpec) error {
	if spec.replicas < 2 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	for {
		st, err := sess.js.Stream(ctx, streamName(spec.name))
		if err == nil {
			if ci := st.CachedInfo().Cluster; ci == nil || ci.Leader != "" {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no leader for the new bucket: %w", mapErr(ctx.Err()))
		case <-time.After(leaderPoll):
		}
	}
}

// lookupBucket returns the bucket's handle; a mirror is refused.
func (c *Conn) lookupBucket(ctx context.Context, sess *session, spec bucketSpec) (jetstream.KeyValue, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	kv, err := sess.js.KeyValue(ctx, spec.name)
	if err != nil {
		return nil, err
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkMirror(spec.name, st); err != nil {
		return nil, err
	}
	return kv, nil
}

func (c *Conn) rawCreate(ctx context.Context, sess *session, spec bucketSpec, log *slog.Logger) error {
	body, err := json.Marshal(spec.streamConfig())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	reply, err := sess.nc.RequestWithContext(ctx, sess.api+"STREAM.CREATE."+streamName(spec.name), body)
	if err != nil {
		return fmt.Errorf("failed to send create request: %w", mapErr(err))
	}
	outcome, err := classifyStreamCreate(reply.Data)
	switch outcome {
	case createUnreadable:
		log.Warn("unreadable stream-create reply; checking whether the bucket exists", "reply", string(reply.Data))
	case createLimit:
		log.Warn("account at its stream limit; checking whether the bucket exists anyway")
	}
	return err
}

// createOutcome classifies a $JS.API.STREAM.CREATE reply.
type createOutcome uint8

const (
	createFailed     createOutcome = iota
	createCreated                  // no error in the reply
	createUnreadable               // not JSON: assumed created, the lookup that follows decides
	createExists                   // 10058: the stream exists (another creator won)
	createLimit                    // 400 "maximum number of streams": it may exist already
)

// streamCreateError is a JetStream error a stream create reply carried.
type streamCreateError struct {
	Code        int
	ErrCode     int
	Description string
}

func (e *streamCreateError) Error() string {
	return fmt.Sprintf("JetStream error %d: %s", e.Code, e.Description)
}

// classifyStreamCreate reads a stream-create reply. Only createFailed comes
// with an error, a *streamCreateError.
func classifyStreamCreate(reply []byte) (createOutcome, error) {
	var r struct {
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(reply, &r); err != nil {
		return createUnreadable, nil
	}
	e := r.Error
	switch {
	case e == nil:
		return createCreated, nil
	case e.ErrCode == codeStreamExists || e.Code == codeStreamExists:
		return createExists, nil
	case e.Code == 400 && strings.Contains(e.Description, "maximum number of streams"):
		return createLimit, nil
	}
	desc := e.Description
	if desc == "" {
		desc = "unknown error"
	}
	return createFailed, &streamCreateError{Code: e.Code, ErrCode: e.ErrCode, Description: desc}
}

// checkMirror refuses a bucket that mirrors another one under a different
// name: its records keep the origin's subjects, which a watch of this
// bucket's name would never match, so it would look empty.
func checkMirror(bucket string, st jetstream.KeyValueStatus) error {
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok || bs.StreamInfo() == nil {
		return nil
	}
	m := bs.StreamInfo().Config.Mirror
	if m == nil || m.Name == streamName(bucket) {
		return nil
	}
	return fmt.Errorf("bucket %s mirrors stream %s under another name, whose keys it cannot read; give the mirror the origin bucket's name", bucket, m.Name)
}
