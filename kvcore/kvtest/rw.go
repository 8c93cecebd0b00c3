package kvtest

import (
	"bytes"
	"testing"

	"github.com/slipstreamkv/slipstream/kvcore"
)

func (s *suite) readWriteCases() []testCase {
	return []testCase{
		{"PutGet", s.testPutGet},
		{"GetMissing", s.testGetMissing},
		{"EmptyValueIsAbsentForGet", s.testEmptyValue},
		{"Create", s.testCreate},
		{"UpdateCAS", s.testUpdateCAS},
		{"InvalidVersion", s.testInvalidVersion},
		{"Delete", s.testDelete},
		{"DeleteVersion", s.testDeleteVersion},
		{"Purge", s.testPurge},
		{"InvalidKeys", s.testInvalidKeys},
	}
}

func (s *suite) testPutGet(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{})
	ctx := s.ctx(t)
	if st.Bucket() == "" {
		t.Fatal("Bucket() is empty")
	}
	v1 := s.put(t, st, "node.a", "hello")
	e, err := st.Get(ctx, "node.a")
	noErr(t, "get", err)
	if e.Key != "node.a" || string(e.Value) != "hello" || e.Version != v1 {
		t.Fatalf("get = %+v, want node.a=hello at %v", e, v1)
	}
	v2 := s.put(t, st, "node.a", "again")
	if !after(v2, v1) {
		t.Fatalf("second put version %v does not follow %v", v2, v1)
	}
	v3 := s.put(t, st, "node.b", "other key")
	if !after(v3, v2) {
		t.Fatalf("versions are not ordered across keys: %v then %v", v2, v3)
	}
	e, err = st.Entry(ctx, "node.a")
	noErr(t, "entry", err)
	if string(e.Value) != "again" || e.Version != v2 {
		t.Fatalf("entry = %+v, want again at %v", e, v2)
	}
	big := bytes.Repeat([]byte{0, 1, 2, 0xff}, 4096)
	_, err = st.Put(ctx, "bin", big)
	noErr(t, "put binary", err)
	e, err = st.Get(ctx, "bin")
	noErr(t, "get binary", err)
	if !bytes.Equal(e.Value, big) {
		t.Fatal("binary value changed on the way")
	}
}

func (s *suite) testGetMissing(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{})
	_, err := st.Get(s.ctx(t), "never.written")
	wantErr(t, "get", err, kvcore.ErrNotFound)
	_, err = st.Entry(s.ctx(t), "never.written")
	wantErr(t, "entry", err, kvcore.ErrNotFound)
}

func (s *suite) testEmptyValue(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{})
	ctx := s.ctx(t)
	v := s.put(t, st, "flag.x", "")
	_, err := st.Get(ctx, "flag.x")
	wantErr(t, "get of an empty value", err, kvcore.ErrNotFound)
	e, err := st.Entry(ctx, "flag.x")
	noErr(t, "entry of an empty value", err)
	if len(e.Value) != 0 || e.Version != v {
		t.Fatalf("entry = %+v, want empty at %v", e, v)
	}
	_, err = st.Create(ctx, "flag.x", []byte("1"))
	wantErr(t, "create over an empty value", err, kvcore.ErrAlreadyExists)
}

func (s *suite) testCreate(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{History: 5})
	ctx := s.ctx(t)
	v, err := st.Create(ctx, "lock.x", []byte("1"))
	noErr(t, "create", err)
	if v.IsUnknown() {
		t.Fatal("create returned the unknown version")
	}
	_, err = st.Create(ctx, "lock.x", []byte("2"))
	wantErr(t, "create on a live key", err, kvcore.ErrAlreadyExists)

	s.del(t, st, "lock.x")
	_, err = st.Create(ctx, "lock.x", []byte("2"))
	noErr(t, "create after delete", err)
	e, err := st.Get(ctx, "lock.x")
	noErr(t, "get", err)
	if string(e.Value) != "2" {
		t.Fatalf("value after create = %q, want 2", e.Value)
	}

	noErr(t, "purge", st.Purge(ctx, "lock.x"))
	_, err = st.Create(ctx, "lock.x", []byte("3"))
	noErr(t, "create after purge", err)

	y := s.put(t, st, "lock.y", "1")
	noErr(t, "delete-version", st.DeleteVersion(ctx, "lock.y", y))
	_, err = st.Create(ctx, "lock.y", []byte("2"))
	wantErr(t, "create after delete-version", err, kvcore.ErrAlreadyExists)
	_, err = st.Get(ctx, "lock.y")
	wantErr(t, "get after delete-version", err, kvcore.ErrNotFound)
}

func (s *suite) testUpdateCAS(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{})
	ctx := s.ctx(t)
	v1 := s.put(t, st, "cfg", "1")
	v2, err := st.Update(ctx, "cfg", []byte("2"), v1)
	noErr(t, "update with the current version", err)
	if !after(v2, v1) {
		t.Fatalf("update version %v does not follow %v", v2, v1)
	}
	_, err = st.Update(ctx, "cfg", []byte("3"), v1)
	wantErr(t, "update with a stale version", err, kvcore.ErrRevisionMismatch)
	e, err := st.Get(ctx, "cfg")
	noErr(t, "get", err)
	if string(e.Value) != "2" {
		t.Fatalf("a failed update changed the value to %q", e.Value)
	}
	_, err = st.Update(ctx, "absent", []byte("1"), v2)
	wantErr(t, "update of an absent key", err, kvcore.ErrRevisionMismatch)
}

func (s *suite) testInvalidVersion(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{})
	ctx := s.ctx(t)
	s.put(t, st, "cfg", "1")
	_, err := st.Update(ctx, "cfg", []byte("2"), kvcore.Version{})
	wantErr(t, "update with the unknown version", err, kvcore.ErrInvalidVersion)
	err = st.DeleteVersion(ctx, "cfg", kvcore.Version{})
	wantErr(t, "delete-version with the unknown version", err, kvcore.ErrInvalidVersion)
	long, _ := kvcore.VersionFromBytes([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	_, err = st.Update(ctx, "cfg", []byte("2"), long)
	wantErr(t, "update with a foreign version", err, kvcore.ErrInvalidVersion)
}

func (s *suite) testDelete(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{})
	ctx := s.ctx(t)
	s.put(t, st, "node.a", "1")
	s.del(t, st, "node.a")
	_, err := st.Get(ctx, "node.a")
	wantErr(t, "get after delete", err, kvcore.ErrNotFound)
	_, err = st.Entry(ctx, "node.a")
	wantErr(t, "entry after delete", err, kvcore.ErrNotFound)
	s.del(t, st, "never.existed") // not an error
}

func (s *suite) testDeleteVersion(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{})
	ctx := s.ctx(t)
	v := s.put(t, st, "node.a", "1")
	other := s.put(t, st, "node.b", "1") // a version of another key
	err := st.DeleteVersion(ctx, "node.a", other)
	wantErr(t, "delete-version with a wrong version", err, kvcore.ErrRevisionMismatch)
	noErr(t, "delete-version", st.DeleteVersion(ctx, "node.a", v))
	_, err = st.Get(ctx, "node.a")
	wantErr(t, "get after delete-version", err, kvcore.ErrNotFound)
	e, err := st.Entry(ctx, "node.a")
	noErr(t, "entry after delete-version", err)
	if len(e.Value) != 0 || !after(e.Version, other) {
		t.Fatalf("entry after delete-version = %+v, want an empty tombstone", e)
	}
	err = st.DeleteVersion(ctx, "never.existed", v)
	wantErr(t, "delete-version of an absent key", err, kvcore.ErrRevisionMismatch)
}

func (s *suite) testPurge(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{History: 10})
	ctx := s.ctx(t)
	anchor := s.put(t, st, "anchor", "keeps the stream's first revision low")
	s.put(t, st, "k", "1")
	s.put(t, st, "k", "2")
	s.put(t, st, "k", "3")
	noErr(t, "purge", st.Purge(ctx, "k"))
	_, err := st.Get(ctx, "k")
	wantErr(t, "get after purge", err, kvcore.ErrNotFound)
	_, err = st.Entry(ctx, "k")
	wantErr(t, "entry after purge", err, kvcore.ErrNotFound)
	noErr(t, "purge of a purged key", st.Purge(ctx, "k"))
	noErr(t, "purge of an absent key", st.Purge(ctx, "never.existed"))
	// The history went with it: a delta watch over the key's old
	// revisions sees only the purge.
	r := s.watch(t, st, kvcore.Prefixes("k"), kvcore.CursorAt(anchor))
	want(t, r.untilSynced(), "purge k")
}

func (s *suite) testInvalidKeys(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{})
	ctx := s.ctx(t)
	for _, key := range []string{"", ".a", "a.", "a..b", "a b", "a.*", "a.>", "ü"} {
		_, err := st.Put(ctx, key, []byte("1"))
		wantErr(t, "put "+key, err, kvcore.ErrInvalidKey)
		_, err = st.Get(ctx, key)
		wantErr(t, "get "+key, err, kvcore.ErrInvalidKey)
		_, err = st.Create(ctx, key, []byte("1"))
		wantErr(t, "create "+key, err, kvcore.ErrInvalidKey)
		wantErr(t, "delete "+key, st.Delete(ctx, key), kvcore.ErrInvalidKey)
		wantErr(t, "purge "+key, st.Purge(ctx, key), kvcore.ErrInvalidKey)
	}
	for _, p := range []string{".a", "a..", "a b", "a.*", ">"} {
		_, err := st.Keys(ctx, p)
		wantErr(t, "keys "+p, err, kvcore.ErrInvalidKey)
		_, err = st.Scan(ctx, p)
		wantErr(t, "scan "+p, err, kvcore.ErrInvalidKey)
		_, err = st.Watch(ctx, kvcore.Prefixes("ok.", p), kvcore.Cursor{})
		wantErr(t, "watch "+p, err, kvcore.ErrInvalidKey)
	}
}
