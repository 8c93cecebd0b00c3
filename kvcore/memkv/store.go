package memkv

import (
	"context"
	"errors"
	"strings"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// store is one bucket, by name, as seen through one connection session.
// Like a NATS store it addresses whichever bucket has its name now: after
// the bucket is deleted and created again it reads and writes the new one.
type store struct {
	c       *Conn
	name    string
	session chan struct{} // closed when the Conn is closed
}

var (
	_ kvcore.Store            = (*store)(nil)
	_ kvcore.BucketIdentifier = (*store)(nil)
)

func (s *store) Bucket() string { return s.name }

func (s *store) fail(op, key string, err error) *kvcore.OpError {
	return &kvcore.OpError{Op: op, Bucket: s.name, Key: key, Err: err}
}

// bucket checks the session and returns the bucket that has the store's
// name now.
func (s *store) bucket(op, key string) (*bucket, error) {
	if s.closed() {
		return nil, s.fail(op, key, kvcore.ErrNotConnected)
	}
	s.c.mu.Lock()
	b := s.c.buckets[s.name]
	s.c.mu.Unlock()
	if b == nil {
		return nil, s.fail(op, key, kvcore.ErrBucketNotFound)
	}
	return b, nil
}

// BucketID returns the identity of the bucket's incarnation: its name and a
// number no other bucket created in this process has. See
// [kvcore.BucketIdentifier].
func (s *store) BucketID(context.Context) (string, error) {
	b, err := s.bucket("bucket-id", "")
	if err != nil {
		return "", err
	}
	return b.id, nil
}

func (s *store) closed() bool {
	select {
	case <-s.session:
		return true
	default:
		return false
	}
}

// lock checks the session and the key and returns the bucket, locked.
func (s *store) lock(op, key string) (*bucket, error) {
	b, err := s.bucket(op, key)
	if err == nil && !kvcore.ValidKey(key) {
		err = s.fail(op, key, kvcore.ErrInvalidKey)
	}
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	return b, nil
}

func (s *store) Entry(_ context.Context, key string) (kvcore.Entry, error) {
	b, err := s.lock("entry", key)
	if err != nil {
		return kvcore.Entry{}, err
	}
	defer b.mu.Unlock()
	r := b.latest(key)
	if r == nil || r.op != kvcore.OpPut {
		return kvcore.Entry{}, s.fail("entry", key, kvcore.ErrNotFound)
	}
	return r.update().Entry(), nil
}

func (s *store) Get(ctx context.Context, key string) (kvcore.Entry, error) {
	e, err := s.Entry(ctx, key)
	if err == nil && len(e.Value) == 0 {
		return kvcore.Entry{}, s.fail("get", key, kvcore.ErrNotFound)
	}
	return e, err
}

// write appends a record if it fits and, when cas, if the key's latest
// revision (0 for none) is expected.
func (s *store) write(op, key string, kind kvcore.Op, value []byte, cas bool, expected uint64) (kvcore.Version, error) {
	b, err := s.lock(op, key)
	if err != nil {
		return kvcore.Version{}, err
	}
	defer b.mu.Unlock()
	if cas {
		var current uint64
		if r := b.latest(key); r != nil {
			current = r.seq
		}
		if current != expected {
			return kvcore.Version{}, s.fail(op, key, kvcore.ErrRevisionMismatch)
		}
	}
	if !b.fits(int64(len(key) + len(value) + RecordOverhead)) {
		return kvcore.Version{}, s.fail(op, key, kvcore.ErrBucketFull)
	}
	return kvcore.RevisionVersion(b.write(key, kind, value, false).seq), nil
}

func (s *store) Put(_ context.Context, key string, value []byte) (kvcore.Version, error) {
	return s.write("put", key, kvcore.OpPut, value, false, 0)
}

func (s *store) Create(_ context.Context, key string, value []byte) (kvcore.Version, error) {
	b, err := s.lock("create", key)
	if err != nil {
		return kvcore.Version{}, err
	}
	var expected uint64
	r := b.latest(key)
	if r != nil {
		expected = r.seq
	}
	b.mu.Unlock()
	if r != nil && r.op == kvcore.OpPut {
		return kvcore.Version{}, s.fail("create", key, kvcore.ErrAlreadyExists)
	}
	v, err := s.write("create", key, kvcore.OpPut, value, true, expected)
	if errors.Is(err, kvcore.ErrRevisionMismatch) {
		return v, s.fail("create", key, kvcore.ErrAlreadyExists) // a concurrent create won
	}
	return v, err
}

func (s *store) Update(_ context.Context, key string, value []byte, expected kvcore.Version) (kvcore.Version, error) {
	rev, ok := expected.Revision()
	if !ok {
		return kvcore.Version{}, s.fail("update", key, kvcore.ErrInvalidVersion)
	}
	return s.write("update", key, kvcore.OpPut, value, true, rev)
}

func (s *store) Delete(_ context.Context, key string) error {
	_, err := s.write("delete", key, kvcore.OpDelete, nil, false, 0)
	return err
}

func (s *store) DeleteVersion(_ context.Context, key string, expected kvcore.Version) error {
	rev, ok := expected.Revision()
	if !ok {
		return s.fail("delete-version", key, kvcore.ErrInvalidVersion)
	}
	_, err := s.write("delete-version", key, kvcore.OpPut, nil, true, rev)
	return err
}

func (s *store) Purge(_ context.Context, key string) error {
	_, err := s.write("purge", key, kvcore.OpPurge, nil, false, 0)
	return err
}

func (s *store) Keys(ctx context.Context, prefix string) ([]string, error) {
	entries, err := s.scan("keys", prefix, false)
	keys := make([]string, len(entries))
	for i, e := range entries {
		keys[i] = e.Key
	}
	return keys, err
}

var _ kvcore.KeyVersionLister = (*store)(nil)

// KeyVersions lists the keys under prefix whose latest record is a put,
// empty values included.
func (s *store) KeyVersions(ctx context.Context, prefix string) ([]kvcore.KeyVersion, error) {
	entries, err := s.scan("keys", prefix, true)
	keys := make([]kvcore.KeyVersion, len(entries))
	for i, e := range entries {
		keys[i] = kvcore.KeyVersion{Key: e.Key, Version: e.Version, Size: len(e.Value)}
	}
	return keys, err
}

func (s *store) Scan(_ context.Context, prefix string) ([]kvcore.Entry, error) {
	return s.scan("scan", prefix, false)
}

// scan returns the entries under prefix whose latest record is a put with
// a value, or any put with keepEmpty.
func (s *store) scan(op, prefix string, keepEmpty bool) ([]kvcore.Entry, error) {
	b, err := s.bucket(op, prefix)
	if err == nil && !kvcore.ValidPrefix(prefix) {
		err = s.fail(op, prefix, kvcore.ErrInvalidKey)
	}
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []kvcore.Entry
	for key := range b.keys {
		if r := b.latest(key); strings.HasPrefix(key, prefix) && r.op == kvcore.OpPut && (keepEmpty || len(r.value) > 0) {
			out = append(out, r.update().Entry())
		}
	}
	return out, nil
}

var _ kvcore.HistoryReader = (*store)(nil)

// History returns the retained records of key, oldest first. See
// [kvcore.HistoryReader].
func (s *store) History(_ context.Context, key string) ([]kvcore.Update, error) {
	b, err := s.lock("history", key)
	if err != nil {
		return nil, err
	}
	defer b.mu.Unlock()
	rs := b.keys[key]
	if len(rs) == 0 {
		return nil, s.fail("history", key, kvcore.ErrNotFound)
	}
	us := make([]kvcore.Update, len(rs))
	for i, r := range rs {
		us[i] = r.update()
	}
	return us, nil
}
