package natskv

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// Conn is a connection to NATS JetStream that vends KV buckets as
// [kvcore.Store]s. It is safe for concurrent use.
//
// A Conn made by [New] dials on Connect, reconnects by itself after network
// failures (forever), and may Connect again after Close. A Conn made by
// [FromConn] borrows a caller's *nats.Conn: it is connected at once, Close
// only forgets the borrowed connection (the caller still owns it), and it
// cannot Connect again afterwards.
type Conn struct {
	opts     Options
	borrowed bool

	// createKV creates a bucket through nats.go's KV API; a seam so tests
	// can force the raw stream-create fallback.
	createKV func(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error)

	mu     sync.Mutex
	sess   *session
	closed bool // a borrowed connection was closed and cannot come back

	denied denials // noted on the connections Connect makes
}

var _ kvcore.Conn = (*Conn)(nil)

// session is one underlying connection. Stores and watches keep the session
// they were made on; once it is closed they fail with kvcore.ErrNotConnected.
type session struct {
	nc *nats.Conn
	js jetstream.JetStream
	// leader reads a stream's messages through its leader: nats.go's
	// original API, whose gets are not direct unless asked (see
	// store.Entry).
	leader nats.JetStreamContext
	api    string // the JetStream API subject prefix, with the domain
	own    bool
	reaper *reaper
	done   chan struct{} // closed by close
	once   sync.Once
}

func newSession(nc *nats.Conn, own bool, o Options) (*session, error) {
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(o.Timeout))
	api := "$JS.API."
	leaderOpts := []nats.JSOpt{nats.MaxWait(o.Timeout)}
	if o.Domain != "" {
		js, err = jetstream.NewWithDomain(nc, o.Domain, jetstream.WithDefaultTimeout(o.Timeout))
		api = "$JS." + o.Domain + ".API."
		leaderOpts = append(leaderOpts, nats.Domain(o.Domain))
	}
	if err != nil {
		return nil, err
	}
	leader, err := nc.JetStream(leaderOpts...)
	if err != nil {
		return nil, err
	}
	return &session{nc: nc, js: js, leader: leader, api: api, own: own, reaper: startReaper(nc, js, o, o.Heartbeat), done: make(chan struct{})}, nil
}

func (s *session) close() {
	s.once.Do(func() {
		close(s.done)
		s.reaper.stop()
		if s.own {
			s.nc.Close()
		}
	})
}

// live reports whether the session may still be used: not closed by us,
// and its connection not closed for good.
func (s *session) live() bool {
	select {
	case <-s.done:
		return false
	default:
		return !s.nc.IsClosed()
	}
}

// New returns an unconnected Conn; call Connect before Store.
func New(opts Options) *Conn {
	return &Conn{opts: opts.withDefaults(), createKV: createKeyValue}
}

// FromConn returns a Conn that uses nc, which the caller keeps owning: it
// is never closed by this package. opts.Servers and the credential and TLS
// fields are ignored.
func FromConn(nc *nats.Conn, opts Options) (*Conn, error) {
	if nc == nil {
		return nil, errors.New("natskv: FromConn: no connection (nc is nil)")
	}
	c := &Conn{opts: opts.withDefaults(), borrowed: true, createKV: createKeyValue}
	sess, err := newSession(nc, false, c.opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", kvcore.ErrConnectionFailed, err)
	}
	c.sess = sess
	return c, nil
}

// Connect dials the servers. It returns at once when already connected.
// Concurrent calls are safe: one connection wins, the others are dropped.
func (c *Conn) Connect(ctx context.Context) error {
	c.mu.Lock()
	if c.sess != nil && c.sess.live() {
		c.mu.Unlock()
		return nil
	}
	if c.borrowed {
		c.mu.Unlock()
		return fmt.Errorf("%w: a connection made with FromConn cannot reconnect after Close", kvcore.ErrConnectionFailed)
	}
	c.mu.Unlock()

	no, err := c.opts.natsOptions()
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < no.Timeout {
			no.Timeout = max(left, time.Millisecond)
		}
	}
	nc, err := no.Connect()
	if err != nil {
		return fmt.Errorf("%w: %v", kvcore.ErrConnectionFailed, err)
	}
	c.denied.watch(nc)
	if no.ConnectedCB != nil {
		no.ConnectedCB(nc) // before a loss can be logged (see connectionEvents)
	}
	if err := ctx.Err(); err != nil {
		nc.Close()
		return err
	}
	sess, err := newSession(nc, true, c.opts)
	if err != nil {
		nc.Close()
		return fmt.Errorf("%w: %v", kvcore.ErrConnectionFailed, err)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess != nil && c.sess.live() {
		sess.close() // another Connect won the race
		return nil
	}
	c.sess = sess
	return nil
}

// Close drops the connection. Stores and watches it vended fail with
// kvcore.ErrNotConnected from then on. It always returns nil.
func (c *Conn) Close() error {
	c.mu.Lock()
	sess := c.sess
	c.sess = nil
	if c.borrowed {
		c.closed = true
	}
	c.mu.Unlock()
	if sess != nil {
		sess.close()
	}
	return nil
}

// Healthy reports whether the connection is up right now.
func (c *Conn) Healthy() bool {
	c.mu.Lock()
	sess := c.sess
	c.mu.Unlock()
	return sess != nil && sess.live() && sess.nc.Status() == nats.CONNECTED
}

// Capabilities reports what JetStream KV offers.
func (c *Conn) Capabilities() kvcore.Capabilities {
	return kvcore.Capabilities{
		StreamingWatch: true,
		PrefixWatch:    true,
		Purge:          true,
		CAS:            true,
	}
}

// NATS returns the underlying connection, or nil when not connected. It is
// for what this package does not wrap (monitoring, other subjects); closing
// it closes the Conn.
func (c *Conn) NATS() *nats.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess == nil {
		return nil
	}
	return c.sess.nc
}

func (c *Conn) session() (*session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess == nil || !c.sess.live() {
		return nil, kvcore.ErrNotConnected
	}
	return c.sess, nil
}

// Store returns the bucket cfg.Bucket, creating it with cfg if it does not
// exist; an existing bucket is used as it is, whatever cfg says. See the
// package documentation for how buckets are created.
func (c *Conn) Store(ctx context.Context, cfg kvcore.StoreConfig) (kvcore.Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, &kvcore.OpError{Op: "store", Bucket: cfg.Bucket, Err: err}
	}
	sess, err := c.session()
	if err != nil {
		return nil, &kvcore.OpError{Op: "store", Bucket: cfg.Bucket, Err: err}
	}
	b, err := c.openBucket(ctx, sess, cfg)
	if err != nil {
		if errors.Is(err, kvcore.ErrNotConnected) || errors.Is(err, kvcore.ErrTimeout) || errors.Is(err, context.Canceled) {
			return nil, &kvcore.OpError{Op: "store", Bucket: cfg.Bucket, Err: err}
		}
		return nil, &kvcore.OpError{Op: "store", Bucket: cfg.Bucket, Err: fmt.Errorf("%w: %w", kvcore.ErrConnectionFailed, err)}
	}
	return newStore(sess, c.opts, cfg.Bucket, b), nil
}

// Open returns the existing bucket named bucket; it never creates one. A
// missing bucket fails with an error wrapping [kvcore.ErrBucketNotFound].
func (c *Conn) Open(ctx context.Context, bucket string) (kvcore.Store, error) {
	if !kvcore.ValidBucket(bucket) {
		return nil, &kvcore.OpError{Op: "open", Bucket: bucket, Err: kvcore.ErrInvalidBucket}
	}
	sess, err := c.session()
	if err != nil {
		return nil, &kvcore.OpError{Op: "open", Bucket: bucket, Err: err}
	}
	b, err := c.lookupBucket(ctx, sess, bucketSpec{name: bucket})
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, &kvcore.OpError{Op: "open", Bucket: bucket, Err: kvcore.ErrBucketNotFound}
	}
	if err != nil {
		return nil, &kvcore.OpError{Op: "open", Bucket: bucket, Err: mapErr(err)}
	}
	return newStore(sess, c.opts, bucket, b), nil
}
