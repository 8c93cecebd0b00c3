package memkv

import (
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
)

const (
	// RecordOverhead is what a record costs beyond its key and value when
	// a bucket's size is held against its MaxBytes.
	RecordOverhead = 64
	// DefaultMaxBytes caps a bucket created with MaxBytes 0, as on NATS.
	DefaultMaxBytes = 10 << 20
)

// record is one entry of a bucket's log. Only gone changes after it is
// written, under the bucket's lock.
type record struct {
	seq     uint64
	key     string
	op      kvcore.Op
	value   []byte
	created time.Time
	expiry  bool // the marker written when the key expired
	gone    bool // removed by history, purge, age or size limits
}

func (r *record) size() int64 { return int64(len(r.key) + len(r.value) + RecordOverhead) }

func (r *record) update() kvcore.Update {
	return kvcore.Update{Op: r.op, Key: r.key, Value: clone(r.value, r.op), Version: kvcore.RevisionVersion(r.seq), Created: r.created}
}

// clone copies a put's value (keeping an empty value non-nil); markers have none.
func clone(v []byte, op kvcore.Op) []byte {
	if op != kvcore.OpPut {
		return nil
	}
	return append([]byte{}, v...)
}

// bucket is a JetStream-like stream of records: one revision sequence,
// per-key history, and limits that remove the oldest records.
type bucket struct {
	name       string
	id         string        // identity of this incarnation (see store.BucketID)
	deleted    chan struct{} // closed by Conn.DeleteBucket
	history    int
	maxAge     time.Duration
	maxBytes   int64 // -1: unlimited
	discardOld bool

	mu      sync.Mutex
	log     []*record            // in revision order; gone records are dropped lazily
	dropped int                  // gone records still in log
	keys    map[string][]*record // retained records of each key, oldest first
	last    uint64               // revision of the newest record ever written
	lastAt  time.Time            // when the newest record ever written was written
	bytes   int64                // size of the retained records
	changed chan struct{}        // closed and replaced after every change
	timer   *time.Timer          // fires at the next expiry
}

func newBucket(cfg kvcore.StoreConfig) (*bucket, error) {
	b := &bucket{name: cfg.Bucket, id: fmt.Sprintf("%s#%d", cfg.Bucket, incarnations.Add(1)), deleted: make(chan struct{}), history: 1, maxAge: cfg.MaxAge, maxBytes: cfg.MaxBytes,
		discardOld: cfg.Discard == kvcore.DiscardOld, keys: map[string][]*record{}, changed: make(chan struct{})}
	if cfg.History > 0 { // at most kvcore.MaxHistory (Validate)
		b.history = cfg.History
	}
	if b.maxBytes == 0 {
		b.maxBytes = DefaultMaxBytes
	}
	return b, nil
}

// incarnations numbers the buckets created in this process, so that a
// bucket deleted and created again gets a new identity.
var incarnations atomic.Uint64

// drop ends the bucket: its watches fail and its expiry timer stops.
func (b *bucket) drop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.deleted)
	if b.timer != nil {
		b.timer.Stop()
	}
}

// lossy reports whether the bucket's limits drop records that nothing
// superseded. Its fields do not change after creation.
func (b *bucket) lossy() bool { return b.maxAge > 0 || b.discardOld && b.maxBytes >= 0 }

// latest returns the newest retained record of key, or nil. Lock held.
func (b *bucket) latest(key string) *record {
	if rs := b.keys[key]; len(rs) > 0 {
		return rs[len(rs)-1]
	}
	return nil
}

// fits reports whether a record of size more bytes may be written. Lock held.
func (b *bucket) fits(size int64) bool {
	return b.discardOld || b.maxBytes < 0 || b.bytes+size <= b.maxBytes
}

// write appends a record and applies the limits. Lock held.
func (b *bucket) write(key string, op kvcore.Op, value []byte, expiry bool) *record {
	b.last++
	r := &record{seq: b.last, key: key, op: op, value: clone(value, op), created: time.Now(), expiry: expiry}
	b.lastAt = r.created
	if op == kvcore.OpPurge { // a purge rolls up the key's history
		for _, old := range slices.Clone(b.keys[key]) {
			b.remove(old)
		}
	}
	b.log = append(b.log, r)
	b.keys[key] = append(b.keys[key], r)
	b.bytes += r.size()
	for len(b.keys[key]) > b.history {
		b.remove(b.keys[key][0])
	}
	if b.discardOld && b.maxBytes >= 0 {
		for b.bytes > b.maxBytes {
			b.remove(b.oldest())
		}
	}
	b.schedule()
	b.notify()
	return r
}

// remove drops a retained record. Lock held.
func (b *bucket) remove(r *record) {
	r.gone = true
	b.dropped++
	b.bytes -= r.size()
	rs := b.keys[r.key]
	if i := slices.Index(rs, r); i >= 0 {
		rs = slices.Delete(rs, i, i+1)
	}
	if len(rs) == 0 {
		delete(b.keys, r.key)
	} else {
		b.keys[r.key] = rs
	}
	if b.dropped > len(b.log)/2 {
		b.log = slices.DeleteFunc(b.log, func(r *record) bool { return r.gone })
		b.dropped = 0
	}
}

// oldest returns the oldest retained record, or nil. Lock held.
func (b *bucket) oldest() *record {
	for _, r := range b.log {
		if !r.gone {
			return r
		}
	}
	return nil
}

// first is the revision of the oldest retained record, last+1 when there
// is none. Lock held.
func (b *bucket) first() uint64 {
	if r := b.oldest(); r != nil {
		return r.seq
	}
	return b.last + 1
}

// since returns up to limit retained records from revision next on. Lock held.
func (b *bucket) since(next uint64, limit int) []*record {
	i := sort.Search(len(b.log), func(i int) bool { return b.log[i].seq >= next })
	var out []*record
	for ; i < len(b.log) && len(out) < limit; i++ {
		if !b.log[i].gone {
			out = append(out, b.log[i])
		}
	}
	return out
}

// notify wakes the watches. Lock held.
func (b *bucket) notify() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// schedule arms the timer for the next expiry. Lock held.
func (b *bucket) schedule() {
	if b.maxAge <= 0 {
		return
	}
	r := b.oldest()
	if r == nil {
		return
	}
	d := time.Until(r.created.Add(b.maxAge))
	if b.timer == nil {
		b.timer = time.AfterFunc(d, b.expire)
	} else {
		b.timer.Reset(d)
	}
}

// expire removes the records older than the max age. When a key's last
// record was a value, a purge marker takes its place, which watches see;
// markers expire like everything else, so records leave in revision order.
func (b *bucket) expire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	changed := false
	for {
		r := b.oldest()
		if r == nil || now.Before(r.created.Add(b.maxAge)) {
			break
		}
		wasLast := b.latest(r.key) == r
		b.remove(r)
		changed = true
		if wasLast && r.op == kvcore.OpPut {
			b.write(r.key, kvcore.OpPurge, nil, true)
		}
	}
	b.schedule()
	if changed {
		b.notify()
	}
}
