package snapshot

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/slipstreamkv/slipstream/kvcore"
)

func put(k, v string, rev uint64) kvcore.Update {
	return kvcore.Update{Op: kvcore.OpPut, Key: k, Value: []byte(v), Version: kvcore.RevisionVersion(rev)}
}

func del(k string, rev uint64) kvcore.Update {
	return kvcore.Update{Op: kvcore.OpDelete, Key: k, Version: kvcore.RevisionVersion(rev)}
}

func purge(k string, rev uint64) kvcore.Update {
	return kvcore.Update{Op: kvcore.OpPurge, Key: k, Version: kvcore.RevisionVersion(rev)}
}

func cur(rev uint64) kvcore.Cursor { return kvcore.RevisionCursor(rev) }

// recs concatenates the header (when withHeader) and encoded records; each
// element is a kvcore.Update, a kvcore.Cursor or raw []byte.
func image(parts ...any) []byte {
	b := append([]byte{}, header[:]...)
	for _, p := range parts {
		switch p := p.(type) {
		case kvcore.Update:
			b = encodeRec(b, p)
		case kvcore.Cursor:
			b = appendCursor(b, p)
		case []byte:
			b = append(b, p...)
		default:
			panic("image: unknown part")
		}
	}
	return b
}

func writeTemp(t testing.TB, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fold.snap")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustLoad(t testing.TB, p string) *Snapshot {
	t.Helper()
	s, err := Load(p)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return s
}

// kvs renders entries as "k=v@version" for comparisons.
func kvs(es []kvcore.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Key + "=" + string(e.Value) + "@" + e.Version.String()
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func assertFile(t testing.TB, p string, want []byte) {
	t.Helper()
	if got := readFile(t, p); !bytes.Equal(got, want) {
		t.Fatalf("file is\n%x\nwant\n%x", got, want)
	}
}

// encodeRec appends u's record (appendUpdate takes a pointer).
func encodeRec(dst []byte, u kvcore.Update) []byte { return appendUpdate(dst, &u) }
