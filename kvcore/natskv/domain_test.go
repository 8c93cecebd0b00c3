package natskv

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
)

// hubAndLeaf runs a hub in domain "hub" with bucket "cfg" holding k.a=1, and
// a leaf node in domain "edge".
func hubAndLeaf(t *testing.T) (hub, leaf *natstest.Server, hubStore kvcore.Store) {
	t.Helper()
	hub = natstest.RunHub(t, "hub")
	leaf = natstest.RunLeaf(t, hub, "edge")
	hubStore = openStore(t, connect(t, fastOpts(hub.URL())), kvcore.StoreConfig{Bucket: "cfg"})
	mustPut(t, hubStore, "k.a", "1")
	return hub, leaf, hubStore
}

// followsHub checks that s reads k.a=1 and that a watch on it follows a
// put made on the hub.
func followsHub(t *testing.T, s kvcore.Store, hubStore kvcore.Store) {
	t.Helper()
	e, err := s.Get(testCtx(t), "k.a")
	if err != nil || string(e.Value) != "1" {
		t.Fatalf("get k.a = %+v, %v", e, err)
	}
	w := startWatch(t, s, kvcore.AllKeys(), kvcore.Cursor{})
	if ev := next(t, w, 10*time.Second); ev.Update.Key != "k.a" {
		t.Fatalf("first event %+v, want k.a", ev)
	}
	if ev := next(t, w, 10*time.Second); !ev.Synced {
		t.Fatalf("second event %+v, want Synced", ev)
	}
	last := mustPut(t, hubStore, "k.b", "2")
	waitFor(t, 20*time.Second, "the hub's put through the watch", func() bool {
		ev := next(t, w, 20*time.Second)
		return ev.Update.Key == "k.b" && string(ev.Update.Value) == "2" && rev(ev.Update.Version) == last
	})
	keys, err := s.Keys(testCtx(t), "k.")
	if err != nil || !slices.Equal(keys, []string{"k.a", "k.b"}) {
		t.Fatalf("keys = %v, %v", keys, err)
	}
}

// A client of a leaf node reads and watches the hub's bucket through the
// hub's JetStream domain; without it, it asks the leaf's own JetStream,
// which has no such bucket.
func TestDomainReadsHubBucketFromLeaf(t *testing.T) {
	_, leaf, hubStore := hubAndLeaf(t)

	if _, err := connect(t, fastOpts(leaf.URL())).Open(testCtx(t), "cfg"); !errors.Is(err, kvcore.ErrBucketNotFound) {
		t.Fatalf("open on the leaf's own domain: err = %v, want ErrBucketNotFound", err)
	}
	o := fastOpts(leaf.URL())
	o.Domain = "hub"
	s, err := connect(t, o).Open(testCtx(t), "cfg")
	if err != nil {
		t.Fatal(err)
	}
	followsHub(t, s, hubStore)
}

// A bucket mirrored from the hub into the leaf's JetStream (same name) is
// read locally: the leaf's clients need no domain, and their consumers
// stay on the leaf.
func TestMirroredBucketOnLeaf(t *testing.T) {
	hub, leaf, hubStore := hubAndLeaf(t)
	_, js := rawJS(t, leaf.URL())
	if _, err := js.CreateKeyValue(testCtx(t), jetstream.KeyValueConfig{
		Bucket: "cfg",
		Mirror: &jetstream.StreamSource{Name: "cfg", Domain: "hub"},
	}); err != nil {
		t.Fatal(err)
	}

	s, err := connect(t, fastOpts(leaf.URL())).Open(testCtx(t), "cfg")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the mirror to copy k.a", func() bool {
		_, err := s.Get(testCtx(t), "k.a")
		return err == nil
	})
	followsHub(t, s, hubStore)
	_, hubJS := rawJS(t, hub.URL())
	if n := consumerCount(t, hubJS, "cfg"); n > 1 {
		t.Errorf("the hub's stream has %d consumers, want at most the mirror's", n)
	}

	// Cut from the hub, the edge still reads its copy; back, it catches up.
	hub.Shutdown()
	if e, err := s.Get(testCtx(t), "k.b"); err != nil || string(e.Value) != "2" {
		t.Fatalf("get on the leaf while the hub is down = %+v, %v", e, err)
	}
	hub.Start()
	waitFor(t, 20*time.Second, "a put on the hub once it is back", func() bool {
		_, err := hubStore.Put(testCtx(t), "k.c", []byte("3"))
		return err == nil
	})
	waitFor(t, 30*time.Second, "the mirror to catch up", func() bool {
		e, err := s.Get(testCtx(t), "k.c")
		return err == nil && string(e.Value) == "3"
	})
}

// A mirror named differently from its origin would look empty to a watch
// (its records keep the origin's subjects): opening it fails and says why.
func TestMirrorUnderAnotherNameIsRefused(t *testing.T) {
	srv := natstest.Run(t)
	c := connect(t, fastOpts(srv.URL()))
	mustPut(t, openStore(t, c, kvcore.StoreConfig{Bucket: "cfg"}), "k", "v")
	_, js := rawJS(t, srv.URL())
	if _, err := js.CreateKeyValue(testCtx(t), jetstream.KeyValueConfig{Bucket: "cfg_copy", Mirror: &jetstream.StreamSource{Name: "cfg"}}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Open(testCtx(t), "cfg_copy")
	if err == nil || !strings.Contains(err.Error(), "mirrors stream KV_cfg under another name") {
		t.Fatalf("open of a mirror under another name: err = %v", err)
	}
}
