package natskv

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
)

// A mirror of a bucket (a regional copy, a backup) answers the direct gets
// sent to the bucket's stream too. Once the bucket is re-created without a
// key, a mirror that still holds it (its origin is gone, so it no longer
// follows) must not make Entry find it: a reconciliation asks Entry whether
// a key missing from a listing is gone, and kept the key's output for good
// when the mirror answered first.
func TestEntryIsTheBucketsNotAMirrors(t *testing.T) {
	srv := natstest.Run(t)
	c := connect(t, fastOpts(srv.URL()))
	s := openStore(t, c, kvcore.StoreConfig{Bucket: "cfg"})
	for i := range 5 {
		mustPut(t, s, fmt.Sprintf("k%d", i), "v")
	}
	_, js := rawJS(t, srv.URL())
	ctx := testCtx(t)
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "cfgbak", Mirror: &jetstream.StreamSource{Name: "cfg"}}); err != nil {
		t.Fatal(err)
	}
	mirror, err := js.Stream(ctx, "KV_cfgbak")
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		info, err := mirror.Info(ctx)
		if err == nil && info.State.Msgs == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mirror did not catch up: %v", err)
		}
	}
	if err := js.DeleteKeyValue(ctx, "cfg"); err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "cfg"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "k0", []byte("new")); err != nil {
		t.Fatal(err)
	}
	fresh := openStore(t, c, kvcore.StoreConfig{Bucket: "cfg"})
	for i := range 40 {
		if e, err := fresh.Entry(ctx, "k3"); !errors.Is(err, kvcore.ErrNotFound) {
			t.Fatalf("read %d of k3, which the bucket lacks: %+v, %v; want not found", i, e, err)
		}
		if e, err := fresh.Entry(ctx, "k0"); err != nil || string(e.Value) != "new" {
			t.Fatalf("read %d of k0: %q, %v; want the bucket's value", i, e.Value, err)
		}
	}
}

// The bridge reads with direct gets while a watch re-creates its consumer.
// A mirror of the bucket from before it was re-created answers them too,
// with records of the old bucket at the revisions the new one reaches
// next: the bridge must deliver only what the bucket's own stream answers.
func TestBridgeIgnoresAMirrorsAnswers(t *testing.T) {
	srv := natstest.Run(t)
	_, js := rawJS(t, srv.URL())
	c := connect(t, fastOpts(srv.URL()))
	ctx := testCtx(t)
	old := openStore(t, c, kvcore.StoreConfig{Bucket: "cfg"})
	for i := range 10 {
		mustPut(t, old, fmt.Sprintf("k%d", i), "old")
	}
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "cfgbak", Mirror: &jetstream.StreamSource{Name: "cfg"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, eventWait, "the mirror", func() bool {
		st, err := js.Stream(ctx, "KV_cfgbak")
		return err == nil && st.CachedInfo().State.Msgs == 10
	})
	if err := js.DeleteKeyValue(ctx, "cfg"); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, c, kvcore.StoreConfig{Bucket: "cfg"})
	cursor := mustPut(t, s, "a", "new")
	h := newHoldCreation(t)
	w := syncedWatch(t, s, h, cursor)
	holdReattach(t, js, s, w, h)
	// Nothing was written since: the mirror's records after the cursor are
	// the old bucket's.
	quiet(t, w, 8*bridgeEvery)
	r := mustPut(t, s, "b", "new")
	if ev := next(t, w, eventWait); ev.Key != "b" || string(ev.Value) != "new" || rev(ev.Version) != r {
		t.Fatalf("event %+v, want b=new at %d", ev, r)
	}
}

// Entry needs only the permission the README lists for it: publishing to
// $JS.API.STREAM.MSG.GET.KV_<bucket>, not direct gets.
func TestEntryWithTheDocumentedPermission(t *testing.T) {
	perms := &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{"$JS.API.STREAM.INFO.KV_cfg", "$JS.API.STREAM.MSG.GET.KV_cfg"}},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
	}
	srv := natstest.Run(t, func(o *server.Options) {
		o.Users = []*server.User{{Username: "admin", Password: "admin"}, {Username: "reader", Password: "reader", Permissions: perms}}
	})
	host := strings.TrimPrefix(srv.URL(), "nats://")
	admin := connect(t, fastOpts("nats://admin:admin@"+host))
	mustPut(t, openStore(t, admin, kvcore.StoreConfig{Bucket: "cfg"}), "k", "v")
	reader := connect(t, fastOpts("nats://reader:reader@"+host))
	s, err := reader.Open(testCtx(t), "cfg")
	if err != nil {
		t.Fatal(err)
	}
	if e, err := s.Entry(testCtx(t), "k"); err != nil || string(e.Value) != "v" {
		t.Fatalf("entry of k: %q, %v", e.Value, err)
	}
	if _, err := s.Entry(testCtx(t), "missing"); !errors.Is(err, kvcore.ErrNotFound) {
		t.Fatalf("entry of a missing key: %v, want not found", err)
	}
}
