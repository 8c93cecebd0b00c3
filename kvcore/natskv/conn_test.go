package natskv

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
)

// roundTrip opens a bucket on c and checks a put and a get.
func roundTrip(t *testing.T, c *Conn) {
	t.Helper()
	s := openStore(t, c, kvcore.StoreConfig{})
	v := mustPut(t, s, "node.a", "hello")
	e, err := s.Get(testCtx(t), "node.a")
	if err != nil || string(e.Value) != "hello" || rev(e.Version) != v {
		t.Fatalf("get = %+v, %v", e, err)
	}
}

func TestConnectWithCredentials(t *testing.T) {
	acc := natstest.Operator(t)
	srv := natstest.Run(t, acc.Option)
	credsFile := filepath.Join(t.TempDir(), "user.creds")
	if err := os.WriteFile(credsFile, acc.Creds, 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("base64 creds", func(t *testing.T) {
		o := fastOpts(srv.URL())
		o.Creds = base64Std(acc.Creds)
		o.CredsFile = "/nonexistent" // ignored: creds come first
		roundTrip(t, connect(t, o))
	})
	t.Run("creds file", func(t *testing.T) {
		o := fastOpts(srv.URL())
		o.CredsFile = credsFile
		roundTrip(t, connect(t, o))
	})
	t.Run("none", func(t *testing.T) {
		err := New(fastOpts(srv.URL())).Connect(testCtx(t))
		wantErr(t, "anonymous connect to an operator server", err, kvcore.ErrConnectionFailed)
	})
}

func TestConnectWithURLUser(t *testing.T) {
	srv := natstest.Run(t, natstest.UserPassword("alice", "s3cret"))
	withUser := "nats://alice:s3cret@" + srv.URL()[len("nats://"):]
	roundTrip(t, connect(t, fastOpts(withUser)))

	wrong := "nats://alice:wrong@" + srv.URL()[len("nats://"):]
	err := New(fastOpts(wrong)).Connect(testCtx(t))
	wantErr(t, "wrong password", err, kvcore.ErrConnectionFailed)
	err = New(fastOpts(srv.URL())).Connect(testCtx(t))
	wantErr(t, "no password", err, kvcore.ErrConnectionFailed)
}

// A URL's user information without a password is a token, as nats.go
// and the nats CLI read it.
func TestConnectWithURLToken(t *testing.T) {
	srv := natstest.Run(t, func(o *server.Options) { o.Authorization = "t0ken" })
	roundTrip(t, connect(t, fastOpts("nats://t0ken@"+strings.TrimPrefix(srv.URL(), "nats://"))))
	err := New(fastOpts("nats://wrong@" + strings.TrimPrefix(srv.URL(), "nats://"))).Connect(testCtx(t))
	wantErr(t, "wrong token", err, kvcore.ErrConnectionFailed)
}

// flakyAuth accepts the password "pw" while accept is set, and counts the
// connections it refuses.
type flakyAuth struct {
	accept  atomic.Bool
	refused atomic.Int64
}

func (a *flakyAuth) Check(c server.ClientAuthentication) bool {
	if a.accept.Load() && c.GetOpts().Password == "pw" {
		return true
	}
	a.refused.Add(1)
	return false
}

// A server that refuses the credentials again and again, then takes them
// again (a password rotated on the server before the host, a user revoked
// and restored), gets the connection back: nats.go closes a connection for
// good after the same authentication error twice unless told not to.
func TestConnectionComesBackAfterRepeatedAuthFailures(t *testing.T) {
	auth := &flakyAuth{}
	auth.accept.Store(true)
	srv := natstest.Run(t, func(o *server.Options) { o.CustomClientAuthentication = auth })
	c := connect(t, fastOpts("nats://alice:pw@"+strings.TrimPrefix(srv.URL(), "nats://")))
	s := openStore(t, c, kvcore.StoreConfig{})
	mustPut(t, s, "k", "1")

	auth.accept.Store(false)
	srv.Restart()
	waitFor(t, 20*time.Second, "three refused reconnects", func() bool { return auth.refused.Load() >= 3 })
	auth.accept.Store(true)
	waitFor(t, 20*time.Second, "a put once the server takes the credentials again", func() bool {
		_, err := s.Put(testCtx(t), "k", []byte("2"))
		return err == nil
	})
}

func TestConnectWithTLS(t *testing.T) {
	files := natstest.TLS(t)
	srv := natstest.Run(t, files.Option)
	tlsURL := "tls://" + srv.URL()[len("nats://"):]

	t.Run("CA file", func(t *testing.T) {
		o := fastOpts(tlsURL)
		o.CAFile = files.CAFile
		roundTrip(t, connect(t, o))
	})
	t.Run("tls.Config", func(t *testing.T) {
		pem, err := os.ReadFile(files.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		o := fastOpts(srv.URL())
		o.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		roundTrip(t, connect(t, o))
	})
	t.Run("unknown CA", func(t *testing.T) {
		err := New(fastOpts(tlsURL)).Connect(testCtx(t))
		wantErr(t, "connect without the CA", err, kvcore.ErrConnectionFailed)
	})
}

func TestConnectSeveralURLs(t *testing.T) {
	srv := natstest.Run(t)
	dead := natstest.Run(t)
	deadURL := dead.URL()
	dead.Shutdown()
	roundTrip(t, connect(t, fastOpts(deadURL, srv.URL())))
	roundTrip(t, connect(t, fastOpts(deadURL+","+srv.URL())))
	err := New(fastOpts(deadURL)).Connect(testCtx(t))
	wantErr(t, "connect to a dead server", err, kvcore.ErrConnectionFailed)
}

// Ports of health_follows_lifecycle, store_before_connect_is_not_connected,
// capabilities_report_nats_features and reconnect_after_shutdown (§11.I 129–131, 153).
func TestLifecycle(t *testing.T) {
	srv := natstest.Run(t)
	c := New(fastOpts(srv.URL()))
	if c.Healthy() {
		t.Fatal("healthy before Connect")
	}
	_, err := c.Store(testCtx(t), kvcore.StoreConfig{Bucket: "x"})
	wantErr(t, "store before connect", err, kvcore.ErrNotConnected)
	caps := c.Capabilities()
	if !caps.StreamingWatch || !caps.PrefixWatch || !caps.CAS || !caps.Purge || caps.TTL || caps.Transactions || caps.GlobalOrdering || caps.MaxValueSize != 0 {
		t.Fatalf("capabilities = %+v", caps)
	}

	if err := c.Connect(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if !c.Healthy() || c.NATS() == nil {
		t.Fatal("not healthy after Connect")
	}
	if err := c.Connect(testCtx(t)); err != nil {
		t.Fatalf("second Connect: %v", err)
	}
	s := openStore(t, c, kvcore.StoreConfig{})
	mustPut(t, s, "k", "1")
	w, err := s.Watch(testCtx(t), kvcore.AllKeys(), kvcore.Cursor{})
	if err != nil {
		t.Fatal(err)
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if c.Healthy() || c.NATS() != nil {
		t.Fatal("healthy after Close")
	}
	_, err = s.Get(testCtx(t), "k")
	wantErr(t, "get on a closed connection", err, kvcore.ErrNotConnected)
	_, err = s.Put(testCtx(t), "k", nil)
	wantErr(t, "put on a closed connection", err, kvcore.ErrNotConnected)
	_, err = s.Keys(testCtx(t), "")
	wantErr(t, "keys on a closed connection", err, kvcore.ErrNotConnected)
	_, err = s.Watch(testCtx(t), kvcore.AllKeys(), kvcore.Cursor{})
	wantErr(t, "watch on a closed connection", err, kvcore.ErrNotConnected)
	drain(t, w)
	wantErr(t, "watch ended by Close", w.Err(), kvcore.ErrWatchFailed)
	wantErr(t, "watch ended by Close", w.Err(), kvcore.ErrNotConnected)

	if err := c.Connect(testCtx(t)); err != nil {
		t.Fatalf("reconnect after Close: %v", err)
	}
	defer c.Close()
	if !c.Healthy() {
		t.Fatal("not healthy after reconnecting")
	}
	roundTrip(t, c)
}

// drain reads w until it ends.
func drain(t *testing.T, w kvcore.Watch) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-w.Events():
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("watch did not end")
		}
	}
}

// Ports of from_client_reuses_existing_connection and
// from_client_connection_refuses_to_reconnect (§11.I 132–133).
func TestFromConn(t *testing.T) {
	srv := natstest.Run(t)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c, err := FromConn(nc, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	if !c.Healthy() {
		t.Fatal("borrowed connection not healthy")
	}
	s := openStore(t, c, kvcore.StoreConfig{Bucket: "reused", MaxBytes: 1 << 20})
	mustPut(t, s, "k", "1")
	if err := c.Connect(testCtx(t)); err != nil {
		t.Fatalf("Connect on a live borrowed connection: %v", err)
	}
	c.Close()
	if c.Healthy() {
		t.Fatal("healthy after Close")
	}
	if nc.IsClosed() {
		t.Fatal("Close closed the caller's connection")
	}
	err = c.Connect(testCtx(t))
	wantErr(t, "Connect after Close", err, kvcore.ErrConnectionFailed)
	if err == nil || !strings.Contains(err.Error(), "FromConn") {
		t.Fatalf("error %v does not name FromConn", err)
	}
	if c.Healthy() {
		t.Fatal("healthy after a refused Connect")
	}

	// A borrowed connection its owner closes is unhealthy.
	nc2, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	c2, err := FromConn(nc2, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	w, err := openStore(t, c2, kvcore.StoreConfig{}).Watch(testCtx(t), kvcore.AllKeys(), kvcore.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	nc2.Close()
	if c2.Healthy() {
		t.Fatal("healthy after the owner closed the connection")
	}
	drain(t, w)
	wantErr(t, "watch on a connection its owner closed", w.Err(), kvcore.ErrNotConnected)
}

// Port of concurrent_connect_is_safe (§11.I 154).
func TestConcurrentConnect(t *testing.T) {
	srv := natstest.Run(t)
	c := New(fastOpts(srv.URL()))
	defer c.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() { errs <- c.Connect(testCtx(t)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if !c.Healthy() {
		t.Fatal("not healthy")
	}
	roundTrip(t, c)
	// The server notices the losers' connections closing a moment later.
	waitFor(t, eventWait, "one client connection", func() bool { return srv.NATS().NumClients() == 1 })
}

// Port of health_reflects_server_death (§11.I 164).
func TestHealthFollowsServer(t *testing.T) {
	srv := natstest.Run(t)
	c := connect(t, fastOpts(srv.URL()))
	srv.Shutdown()
	waitFor(t, 15*time.Second, "unhealthy after the server died", func() bool { return !c.Healthy() })
	srv.Start()
	waitFor(t, 15*time.Second, "healthy after the server came back", c.Healthy)
}

// Every operation is bounded by Options.Timeout: a connection that neither
// delivers nor fails cannot park a caller.
func TestOperationTimeout(t *testing.T) {
	srv := natstest.Run(t)
	proxy := natstest.NewProxy(t, srv.URL())
	o := fastOpts(proxy.URL())
	o.Timeout = 300 * time.Millisecond
	c := connect(t, o)
	s := openStore(t, c, kvcore.StoreConfig{})
	mustPut(t, s, "k", "1")
	proxy.Stall(true)
	defer proxy.Stall(false)
	ctx := testCtx(t)

	_, err := s.Get(ctx, "k")
	wantErr(t, "get", err, kvcore.ErrTimeout)
	_, err = s.Put(ctx, "k", []byte("2"))
	wantErr(t, "put", err, kvcore.ErrTimeout)
	_, err = s.Keys(ctx, "")
	wantErr(t, "keys", err, kvcore.ErrTimeout)
	_, err = s.Watch(ctx, kvcore.AllKeys(), kvcore.Cursor{})
	wantErr(t, "watch setup", err, kvcore.ErrTimeout)
	wantErr(t, "watch setup", err, kvcore.ErrWatchFailed)
	_, err = c.Store(ctx, kvcore.StoreConfig{Bucket: uniqueBucket()})
	wantErr(t, "store", err, kvcore.ErrTimeout)
}

// A write nobody answers (a replicated bucket between leaders, or one just
// created) is retried within the operation timeout: it reached no stream,
// so retrying cannot store it twice.
func TestWriteRetriesWithoutResponders(t *testing.T) {
	srv := natstest.Run(t)
	c := connect(t, fastOpts(srv.URL()))
	_, js := rawJS(t, srv.URL())
	s := openStore(t, c, kvcore.StoreConfig{})
	ctx := testCtx(t)
	if err := js.DeleteKeyValue(ctx, s.bucket); err != nil {
		t.Fatal(err)
	}
	back := make(chan error, 1)
	go func() {
		time.Sleep(time.Second) // longer than nats.go's own retries
		_, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: s.bucket})
		back <- err
	}()
	if _, err := s.Put(ctx, "k", []byte("1")); err != nil {
		t.Fatalf("put while the stream was away: %v", err)
	}
	if err := <-back; err != nil {
		t.Fatal(err)
	}
	e, err := s.Get(ctx, "k")
	if err != nil || rev(e.Version) != 1 {
		t.Fatalf("get = %+v, %v (stored more than once?)", e, err)
	}
}

func TestOpenNeverCreates(t *testing.T) {
	srv := natstest.Run(t)
	c := connect(t, fastOpts(srv.URL()))
	ctx := testCtx(t)
	if _, err := c.Open(ctx, "missing"); !errors.Is(err, kvcore.ErrBucketNotFound) {
		t.Fatalf("Open(missing) = %v, want ErrBucketNotFound", err)
	}
	js, err := jetstream.New(c.NATS())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.KeyValue(ctx, "missing"); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Fatalf("Open created the bucket (lookup: %v)", err)
	}
	if _, err := c.Open(ctx, "bad.name"); !errors.Is(err, kvcore.ErrInvalidBucket) {
		t.Fatalf("Open(bad.name) = %v, want ErrInvalidBucket", err)
	}
	w := openStore(t, c, kvcore.StoreConfig{Bucket: "present"})
	if _, err := w.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	s, err := c.Open(ctx, "present")
	if err != nil {
		t.Fatal(err)
	}
	if e, err := s.Get(ctx, "k"); err != nil || string(e.Value) != "v" {
		t.Fatalf("Get through Open = %v, %v", e, err)
	}
}

// A nil connection is refused, not dereferenced.
func TestFromConnRefusesNil(t *testing.T) {
	if _, err := FromConn(nil, Options{}); err == nil || !strings.Contains(err.Error(), "nc is nil") {
		t.Errorf("FromConn(nil) = %v, want an error naming the nil connection", err)
	}
}
