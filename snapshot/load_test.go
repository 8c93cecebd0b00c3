package snapshot

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/slipstreamkv/slipstream/kvcore"
)

type vectorFile struct {
	Cases []struct {
		Name    string `json:"name"`
		FileHex string `json:"file_hex"`
		Expect  struct {
			LoadReturns    string `json:"load_returns"`
			Entries        []struct{ Key, Value, Version string }
			Cursor         string `json:"cursor"`
			AlreadyCompact bool   `json:"already_compact"`
			RewritesFile   bool   `json:"rewrites_file"`
			FileAfterHex   string `json:"file_after_hex"`
		} `json:"expect"`
	} `json:"cases"`
}

func loadVectors(t testing.TB) vectorFile {
	t.Helper()
	raw, err := os.ReadFile("testdata/snapshot-public.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Cases) == 0 {
		t.Fatal("no vectors")
	}
	return v
}

// vectorVersion renders a version as the vectors do: decimal for 8-byte
// tokens, else space-separated hex bytes; "none" for a none cursor.
func vectorVersion(v kvcore.Version) string {
	if rev, ok := v.Revision(); ok {
		return strconv.FormatUint(rev, 10)
	}
	if v.IsUnknown() {
		return "none"
	}
	h := v.Hex()
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, " ")
}

func TestVectors(t *testing.T) {
	for _, c := range loadVectors(t).Cases {
		t.Run(c.Name, func(t *testing.T) {
			img, err := hex.DecodeString(c.FileHex)
			if err != nil {
				t.Fatal(err)
			}
			p := writeTemp(t, img)
			rep, err := Inspect(p)
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			if got := rep.rep.compact(); got != c.Expect.AlreadyCompact {
				t.Errorf("already compact = %v, want %v", got, c.Expect.AlreadyCompact)
			}
			assertFile(t, p, img) // Inspect never writes
			s := mustLoad(t, p)
			if (s != nil) != (c.Expect.LoadReturns == "Some") {
				t.Fatalf("Load returned %v, want %s", s, c.Expect.LoadReturns)
			}
			var gotCur string
			var got []string
			if s != nil {
				gotCur = vectorVersion(s.Cursor.Version())
				for _, e := range s.Entries {
					got = append(got, e.Key+"="+string(e.Value)+"@"+vectorVersion(e.Version))
				}
			} else {
				gotCur = "none"
			}
			var want []string
			for _, e := range c.Expect.Entries {
				want = append(want, e.Key+"="+e.Value+"@"+e.Version)
			}
			if !equalStrings(got, want) || gotCur != c.Expect.Cursor {
				t.Fatalf("entries %q cursor %s, want %q cursor %s", got, gotCur, want, c.Expect.Cursor)
			}
			after := img
			if c.Expect.RewritesFile {
				after, _ = hex.DecodeString(c.Expect.FileAfterHex)
			}
			assertFile(t, p, after)
			mustLoad(t, p)
			assertFile(t, p, after) // loading again changes nothing
		})
	}
}

// corruptCRC flips the stored CRC of a record.
func corruptCRC(rec []byte) []byte {
	rec = append([]byte{}, rec...)
	rec[0] ^= 0xff
	return rec
}

// rawRecord builds a record with a valid CRC around an arbitrary body
// (type byte and payload).
func rawRecord(body ...byte) []byte {
	rec := append([]byte{0, 0, 0, 0}, body...)
	return sealRecord(rec, 0)
}

func TestLoadRules(t *testing.T) {
	a1, b2, c3 := encodeRec(nil, put("a", "1", 1)), encodeRec(nil, put("b", "2", 2)), encodeRec(nil, put("c", "3", 3))
	cur1, cur2 := appendCursor(nil, cur(1)), appendCursor(nil, cur(2))
	compact12 := image(put("a", "1", 1), put("b", "2", 2), cur(2))
	hugeValue := func(crcOK bool) []byte { // PUT "k" declaring a 16 MiB + 1 value
		rec := rawRecord(recPut, 1, 0, 'k', 0x01, 0x00, 0x00, 0x01)
		if !crcOK {
			rec[0] ^= 1
		}
		return rec
	}
	tests := []struct {
		name   string
		file   []byte
		want   []string // nil: Load returns no snapshot
		cursor kvcore.Cursor
		kind   Kind // refused with this kind
		offset int64
		reason string
		after  []byte // file afterwards; nil = untouched
		action Action
	}{
		{name: "empty file", file: []byte{}, kind: KindInvalidFormat, reason: "file too short"},
		{name: "5 bytes", file: header[:5], kind: KindInvalidFormat, reason: "file too short"},
		{name: "bad magic", file: []byte("XXXX\x01\x00"), kind: KindInvalidFormat, reason: "magic"},
		{name: "version 3", file: []byte("PGSS\x03\x00"), kind: KindInvalidFormat, offset: 4, reason: "unsupported version 3"},
		{name: "version 1", file: []byte("PGSS\x01\x00"), kind: KindInvalidFormat, offset: 4, reason: "unsupported version 1"},
		{name: "header only", file: image()},
		{name: "cursor only", file: image(cur(42)), want: []string{}, cursor: cur(42)},
		{name: "only deletes", file: image(del("a", 1), del("b", 2)), after: image(), action: ActionReset},
		{name: "puts cancelled by deletes", file: image(put("a", "1", 1), del("a", 2)), after: image(), action: ActionReset},
		{name: "none cursor only", file: image(kvcore.Cursor{}), after: image(), action: ActionReset},
		{name: "torn first record", file: image([]byte{0x11, 0x22, 0x33, 0x44, 0x01, 0x00}), after: image(), action: ActionReset},
		{name: "truncated final record", file: image(a1, cur1, b2[:len(b2)-3]), want: []string{"a=1@rev 1"}, cursor: cur(1),
			after: image(put("a", "1", 1), cur(1)), action: ActionCompact},
		{name: "truncated final cursor", file: image(a1, cur1, b2, cur2[:9]), want: []string{"a=1@rev 1", "b=2@rev 2"}, cursor: cur(1),
			after: image(a1, b2, cur1), action: ActionCompact},
		{name: "crc failure in last record", file: image(a1, cur1, corruptCRC(b2)), want: []string{"a=1@rev 1"}, cursor: cur(1),
			after: image(a1, cur1), action: ActionCompact},
		{name: "crc failure with 5 bytes after", file: image(a1, cur1, corruptCRC(b2), []byte{1, 2, 3, 4, 5}),
			want: []string{"a=1@rev 1"}, cursor: cur(1), after: image(a1, cur1), action: ActionCompact},
		{name: "crc failure with a record after", file: image(a1, corruptCRC(b2), cur2), kind: KindCorrupted, offset: int64(headerLen + len(a1))},
		{name: "crc failure of a cursor mid-file", file: image(a1, corruptCRC(cur1), b2), kind: KindCorrupted, offset: int64(headerLen + len(a1))},
		{name: "trailing zero byte", file: image(a1, cur1, make([]byte, 1)), want: []string{"a=1@rev 1"}, cursor: cur(1), after: image(a1, cur1), action: ActionCompact},
		{name: "trailing 4 zeros", file: image(a1, cur1, make([]byte, 4)), want: []string{"a=1@rev 1"}, cursor: cur(1), after: image(a1, cur1), action: ActionCompact},
		{name: "trailing 8 zeros", file: image(a1, cur1, make([]byte, 8)), want: []string{"a=1@rev 1"}, cursor: cur(1), after: image(a1, cur1), action: ActionCompact},
		{name: "trailing 4096 zeros", file: image(a1, cur1, make([]byte, 4096)), want: []string{"a=1@rev 1"}, cursor: cur(1), after: image(a1, cur1), action: ActionCompact},
		{name: "zero hole before data", file: image(a1, cur1, make([]byte, 5), b2, cur2), kind: KindInvalidFormat,
			offset: int64(headerLen + len(a1) + len(cur1)), reason: "zero hole"},
		{name: "zero hole before one byte", file: image(a1, make([]byte, 7), []byte{1}), kind: KindInvalidFormat,
			offset: int64(headerLen + len(a1)), reason: "zero hole"},
		{name: "unknown type mid-file", file: image(a1, rawRecord(0x07, 0), cur1), kind: KindInvalidFormat,
			offset: int64(headerLen + len(a1)), reason: "unknown record type: 0x7"},
		{name: "unknown type at tail", file: image(a1, cur1, []byte{9, 9, 9, 9, 0xab}), kind: KindInvalidFormat,
			offset: int64(headerLen + len(a1) + len(cur1)), reason: "unknown record type: 0xab"},
		{name: "type zero with a crc", file: image(a1, []byte{1, 0, 0, 0, 0, 0}), kind: KindInvalidFormat,
			offset: int64(headerLen + len(a1)), reason: "unknown record type: 0x0"},
		{name: "put version of 11 bytes", file: image(rawRecord(recPut, 1, 0, 'k', 0, 0, 0, 0, 11)), kind: KindInvalidFormat,
			offset: headerLen, reason: "exceeds 10"},
		{name: "delete version of 11 bytes", file: image(a1, rawRecord(recDelete, 1, 0, 'a', 11)), kind: KindInvalidFormat,
			offset: int64(headerLen + len(a1)), reason: "exceeds 10"},
		{name: "cursor of 11 bytes", file: image(a1, []byte{0, 0, 0, 0, recCursor, 11}), kind: KindInvalidFormat,
			offset: int64(headerLen + len(a1)), reason: "exceeds 10"},
		{name: "oversized value mid-file", file: image(a1, hugeValue(true), make([]byte, 2), cur1), kind: KindCorrupted,
			offset: int64(headerLen + len(a1))},
		{name: "oversized value in last record", file: image(a1, cur1, hugeValue(true)), want: []string{"a=1@rev 1"}, cursor: cur(1),
			after: image(a1, cur1), action: ActionCompact},
		{name: "invalid utf-8 put key", file: image(a1, rawRecord(recPut, 1, 0, 0xff, 0, 0, 0, 0, 0), cur1), kind: KindInvalidFormat,
			offset: int64(headerLen + len(a1)), reason: "UTF-8"},
		{name: "invalid utf-8 delete key", file: image(rawRecord(recDelete, 2, 0, 0xc3, 0x28, 0)), kind: KindInvalidFormat,
			offset: headerLen, reason: "UTF-8"},
		{name: "stale cursor records", file: image(a1, cur1, cur2, cur(3)), want: []string{"a=1@rev 1"}, cursor: cur(3),
			after: image(a1, cur(3)), action: ActionCompact},
		{name: "data ahead of cursor", file: image(a1, cur1, b2), want: []string{"a=1@rev 1", "b=2@rev 2"}, cursor: cur(1)},
		{name: "puts without cursor", file: image(b2, a1), want: []string{"a=1@rev 1", "b=2@rev 2"}},
		{name: "duplicate puts", file: image(put("a", "0", 0), a1, b2, cur2), want: []string{"a=1@rev 1", "b=2@rev 2"}, cursor: cur(2),
			after: compact12, action: ActionCompact},
		{name: "delete then re-put", file: image(a1, del("a", 2), put("a", "3", 3), c3, cur(3)), want: []string{"a=3@rev 3", "c=3@rev 3"},
			cursor: cur(3), after: image(put("a", "3", 3), c3, cur(3)), action: ActionCompact},
		{name: "compact file untouched", file: compact12, want: []string{"a=1@rev 1", "b=2@rev 2"}, cursor: cur(2)},
		{name: "unsorted unique puts untouched", file: image(c3, a1, cur(3)), want: []string{"a=1@rev 1", "c=3@rev 3"}, cursor: cur(3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeTemp(t, tt.file)
			s, err := Load(p)
			if tt.kind != 0 {
				var fe *FormatError
				if !errors.As(err, &fe) {
					t.Fatalf("err = %v, want a FormatError", err)
				}
				if fe.Kind != tt.kind || fe.Offset != tt.offset || !strings.Contains(fe.Reason, tt.reason) {
					t.Fatalf("err = %+v, want kind %v at %d with %q", fe, tt.kind, tt.offset, tt.reason)
				}
				sentinel := map[Kind]error{KindInvalidFormat: ErrInvalidFormat, KindCorrupted: ErrCorrupted}[tt.kind]
				if !errors.Is(err, sentinel) {
					t.Fatalf("err %v does not wrap %v", err, sentinel)
				}
				assertFile(t, p, tt.file)
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if (s != nil) != (tt.want != nil) {
				t.Fatalf("Load = %+v, want entries %q", s, tt.want)
			}
			if s != nil {
				if got := kvs(s.Entries); !equalStrings(got, tt.want) || s.Cursor != tt.cursor {
					t.Fatalf("entries %q cursor %v, want %q cursor %v", got, s.Cursor, tt.want, tt.cursor)
				}
			}
			after := tt.after
			if after == nil {
				after = tt.file
			}
			assertFile(t, p, after)
			rep, err := Repair(p)
			if err != nil || rep.Action != ActionNone {
				t.Fatalf("second repair: %v, action %v; want nothing to do", err, rep.Action)
			}
		})
	}
}

func TestInspectReportsWithoutWriting(t *testing.T) {
	a1, b2 := encodeRec(nil, put("a", "1", 1)), encodeRec(nil, put("b", "2", 2))
	img := image(a1, cur(1), put("a", "x", 2), del("b", 3), b2, cur(3), b2[:4])
	p := writeTemp(t, img)
	rep, err := Inspect(p)
	if err != nil {
		t.Fatal(err)
	}
	wantEnd := int64(len(img) - 4)
	if rep.Puts != 3 || rep.Deletes != 1 || rep.Cursors != 2 || rep.Keys != 2 || rep.Cursor != cur(3) ||
		rep.Action != ActionCompact || !rep.TornTail || rep.ValidEnd != wantEnd || rep.Size != int64(len(img)) {
		t.Fatalf("report %+v", rep)
	}
	if off, ok := rep.BadOffset(); !ok || off != wantEnd {
		t.Fatalf("BadOffset = %d, %v", off, ok)
	}
	want := image(put("a", "x", 2), b2, cur(3))
	if rep.CompactedSize != int64(len(want)) {
		t.Fatalf("compacted size %d, want %d", rep.CompactedSize, len(want))
	}
	assertFile(t, p, img)
	rep, err = Repair(p)
	if err != nil || rep.Action != ActionCompact {
		t.Fatalf("Repair: %v %v", rep, err)
	}
	assertFile(t, p, want)
}

// Port of §11.B missing_file_returns_none.
func TestLoadMissingFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "absent.snap")
	if s, err := Load(p); s != nil || err != nil {
		t.Fatalf("Load = %v, %v", s, err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("load created the file: %v", err)
	}
}

// Only the first read of the file may say it is missing. A rewrite at load
// that fails with ENOENT (its temporary file vanished) is an error, not an
// absent file: neither Load nor Open may give an empty fold for a file that
// holds one.
func TestLoadRewriteENOENTIsNotAMissingFile(t *testing.T) {
	img := image(put("a", "1", 1), cur(1), put("a", "2", 2), cur(2)) // dirty: loading rewrites it
	vanish := func(fsy *fsys) {
		fsy.rename = func(from, to string) error {
			os.Remove(from)
			return &os.LinkError{Op: "rename", Old: from, New: to, Err: fs.ErrNotExist}
		}
	}
	t.Run("Load", func(t *testing.T) {
		p := writeTemp(t, img)
		fsy := osFS()
		vanish(&fsy)
		if s, err := fsy.loadSnapshot(p); err == nil {
			t.Fatalf("Load = %+v, nil; want the rewrite's error", s)
		}
		assertFile(t, p, img)
	})
	t.Run("Open", func(t *testing.T) {
		p := writeTemp(t, img)
		l := &Log{path: p, opts: Options{}.withDefaults(), fs: osFS()}
		vanish(&l.fs)
		if err := l.open(); err == nil {
			l.Close()
			t.Fatalf("Open succeeded at cursor %v with %d keys; the file holds key a at cursor 2", l.Cursor(), l.Len())
		}
		assertFile(t, p, img)
	})
}
