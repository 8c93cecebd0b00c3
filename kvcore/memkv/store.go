package memkv

import (
	"context"
	"errors"
	"strings"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// store is one bucket as seen through one connection session.
type store struct {
	b       *bucket
	session chan struct{} // closed when the Conn is closed
}

var _ kvcore.Store = (*store)(nil)

func (s *store) Bucket() string { return s.b.name }

func (s *store) fail(op, key string, err error) *kvcore.OpError {
	return &kvcore.OpError{Op: op, Bucket: s.b.name, Key: key, Err: err}
}

func (s *store) closed() bool {
	select {
	case <-s.session:
		return true
	default:
		return false
	}
}

// lock checks the session and the key and locks the bucket.
func (s *store) lock(op, key string) error {
	if s.closed() {
		return s.fail(op, key, kvcore.ErrNotConnected)
	}
	if !kvcore.ValidKey(key) {
		return s.fail(op, key, kvcore.ErrInvalidKey)
	}
	s.b.mu.Lock()
	return nil
}

func (s *store) Entry(_ context.Context, key string) (kvcore.Entry, error) {
	if err := s.lock("entry", key); err != nil {
		return kvcore.Entry{}, err
	}
	defer s.b.mu.Unlock()
	r := s.b.latest(key)
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
	if err := s.lock(op, key); err != nil {
		return kvcore.Version{}, err
	}
	defer s.b.mu.Unlock()
	if cas {
		var current uint64
		if r := s.b.latest(key); r != nil {
			current = r.seq
		}
		if current != expected {
			return kvcore.Version{}, s.fail(op, key, kvcore.ErrRevisionMismatch)
		}
	}
	if !s.b.fits(int64(len(key) + len(value) + RecordOverhead)) {
		return kvcore.Version{}, s.fail(op, key, kvcore.ErrBucketFull)
	}
	return kvcore.RevisionVersion(s.b.write(key, kind, value, false).seq), nil
}

func (s *store) Put(_ context.Context, key string, value []byte) (kvcore.Version, error) {
	return s.write("put", key, kvcore.OpPut, value, false, 0)
}

func (s *store) Create(_ context.Context, key string, value []byte) (kvcore.Version, error) {
	if err := s.lock("create", key); err != nil {
		return kvcore.Version{}, err
	}
	var expected uint64
	r := s.b.latest(key)
	if r != nil {
		expected = r.seq
	}
	s.b.mu.Unlock()
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
	entries, err := s.scan("keys", prefix)
	keys := make([]string, len(entries))
	for i, e := range entries {
		keys[i] = e.Key
	}
	return keys, err
}

func (s *store) Scan(_ context.Context, prefix string) ([]kvcore.Entry, error) {
	return s.scan("scan", prefix)
}

func (s *store) scan(op, prefix string) ([]kvcore.Entry, error) {
	if s.closed() {
		return nil, s.fail(op, prefix, kvcore.ErrNotConnected)
	}
	if !kvcore.ValidPrefix(prefix) {
		return nil, s.fail(op, prefix, kvcore.ErrInvalidKey)
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	var out []kvcore.Entry
	for key := range s.b.keys {
		if r := s.b.latest(key); strings.HasPrefix(key, prefix) && r.op == kvcore.OpPut && len(r.value) > 0 {
			out = append(out, r.update().Entry())
		}
	}
	return out, nil
}
