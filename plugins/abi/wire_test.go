package abi

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func sampleRecords() []Record {
	return []Record{
		{Op: OpPut, Revision: 7, Version: []byte{0, 0, 0, 0, 0, 0, 0, 7}, Key: "app.a", Value: []byte("hello")},
		{Op: OpPut, Revision: 8, Key: "app.empty", Value: []byte{}},
		{Op: OpDelete, Revision: 9, Version: []byte{9}, Key: "app.b"},
		{Op: OpPurge, Revision: 1 << 60, Key: "app.ü/x"},
		{Op: OpPut, Key: strings.Repeat("k", 300), Value: bytes.Repeat([]byte{0xff}, 1024), Version: bytes.Repeat([]byte{1}, MaxVersionLen)},
	}
}

func encodeInput(h Header, recs []Record) []byte {
	h.Count = uint32(len(recs))
	b := AppendHeader(nil, h)
	for _, r := range recs {
		b = AppendRecord(b, r)
	}
	return b
}

func TestInputRoundTrip(t *testing.T) {
	h := Header{Kind: KindApply, Watch: "routes", Cursor: Cursor{Revision: 42, Version: []byte{0, 0, 0, 0, 0, 0, 0, 42}}}
	recs := sampleRecords()
	in := encodeInput(h, recs)

	got, n, err := ParseHeader(in)
	if err != nil {
		t.Fatal(err)
	}
	if got.Kind != h.Kind || got.Watch != h.Watch || got.Cursor.Revision != 42 ||
		!bytes.Equal(got.Cursor.Version, h.Cursor.Version) || got.Count != uint32(len(recs)) {
		t.Fatalf("header = %+v", got)
	}
	if n != HeaderSize+8+len("routes") {
		t.Fatalf("header size %d", n)
	}
	rest := in[n:]
	for i, want := range recs {
		r, m, err := ParseRecord(rest)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if m != want.Size() {
			t.Fatalf("record %d: size %d, want %d", i, m, want.Size())
		}
		if r.Op != want.Op || r.Revision != want.Revision || r.Key != want.Key ||
			!bytes.Equal(r.Value, want.Value) || !bytes.Equal(r.Version, want.Version) {
			t.Fatalf("record %d = %+v, want %+v", i, r, want)
		}
		rest = rest[m:]
	}
	if len(rest) != 0 {
		t.Fatalf("%d trailing bytes", len(rest))
	}
}

func TestRecordLayout(t *testing.T) {
	// The byte layout is the contract with non-Go guests: pin it.
	got := AppendRecord(nil, Record{Op: OpPut, Revision: 0x0102030405060708, Version: []byte{0xaa}, Key: "k", Value: []byte("vv")})
	want := []byte{
		1, 1, 0, 0, // op, version length, reserved
		1, 0, 0, 0, // key length
		2, 0, 0, 0, // value length
		8, 7, 6, 5, 4, 3, 2, 1, // revision, little-endian
		0xaa, 'k', 'v', 'v',
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("record bytes\n got %v\nwant %v", got, want)
	}
	hdr := AppendHeader(nil, Header{Kind: KindRender, Watch: "w", Cursor: Cursor{Revision: 3}})
	wantHdr := []byte{2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 'w'}
	if !bytes.Equal(hdr, wantHdr) {
		t.Fatalf("header bytes\n got %v\nwant %v", hdr, wantHdr)
	}
}

func TestParseRefusesEveryTruncation(t *testing.T) {
	for _, r := range sampleRecords() {
		b := AppendRecord(nil, r)
		for i := range len(b) {
			if _, _, err := ParseRecord(b[:i]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("record %q truncated to %d bytes: err = %v", r.Key, i, err)
			}
		}
	}
	h := AppendHeader(nil, Header{Kind: KindApply, Watch: "watch", Cursor: Cursor{Version: []byte{1, 2}}})
	for i := range len(h) {
		if _, _, err := ParseHeader(h[:i]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("header truncated to %d bytes: err = %v", i, err)
		}
	}
	d := AppendDirEntry(nil, DirEntry{Type: TypeFile, Name: "name.conf"})
	for i := range len(d) {
		if _, _, err := ParseDirEntry(d[:i]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("entry truncated to %d bytes: err = %v", i, err)
		}
	}
}

func TestParseRefusesBadFields(t *testing.T) {
	rec := func(mut func(b []byte)) []byte {
		b := AppendRecord(nil, Record{Op: OpPut, Key: "k", Value: []byte("v")})
		mut(b)
		return b
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"op zero", rec(func(b []byte) { b[0] = 0 })},
		{"op four", rec(func(b []byte) { b[0] = 4 })},
		{"version too long", rec(func(b []byte) { b[1] = MaxVersionLen + 1 })},
		{"reserved", rec(func(b []byte) { b[3] = 1 })},
		{"delete with value", rec(func(b []byte) { b[0] = byte(OpDelete) })},
		{"key length past end", rec(func(b []byte) { b[7] = 0x80 })},
		{"value length past end", rec(func(b []byte) { b[11] = 0xff })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := ParseRecord(tt.in); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
	h := AppendHeader(nil, Header{Kind: KindApply})
	for name, mut := range map[string]func(b []byte){
		"kind":     func(b []byte) { b[0] = 3 },
		"version":  func(b []byte) { b[1] = 17 },
		"reserved": func(b []byte) { b[2] = 1 },
	} {
		b := bytes.Clone(h)
		mut(b)
		if _, _, err := ParseHeader(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("header %s: err = %v, want ErrMalformed", name, err)
		}
	}
	if _, _, err := ParsePageHeader([]byte{0, 0, 0, 0, 2, 0, 0, 0}); !errors.Is(err, ErrMalformed) {
		t.Errorf("unknown page flag: err = %v", err)
	}
	if _, _, err := ParseDirEntry([]byte{1, 0, 0, 0}); !errors.Is(err, ErrMalformed) {
		t.Errorf("empty entry name: err = %v", err)
	}
}

func TestPageWriter(t *testing.T) {
	recs := []Record{
		{Op: OpPut, Key: "a", Value: make([]byte, 10)},
		{Op: OpPut, Key: "b", Value: make([]byte, 10)},
		{Op: OpPut, Key: "c", Value: make([]byte, 10)},
	}
	size := recs[0].Size()

	fill := func(capacity, soft int) ([]byte, int, int) {
		w := NewPageWriter(capacity, soft)
		added := 0
		for _, r := range recs {
			if !w.AddRecord(r) {
				break
			}
			added++
		}
		page, need := w.Finish()
		return page, need, added
	}
	page := func(t *testing.T, b []byte) Page {
		t.Helper()
		p, _, err := ParsePageHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	t.Run("all fit", func(t *testing.T) {
		b, need, added := fill(1<<20, 1<<20)
		if need != 0 || added != 3 || len(b) != PageHeaderSize+3*size {
			t.Fatalf("need %d added %d len %d", need, added, len(b))
		}
		if p := page(t, b); p.Count != 3 || p.More {
			t.Fatalf("page %+v", p)
		}
	})
	t.Run("two fit exactly", func(t *testing.T) {
		b, need, added := fill(PageHeaderSize+2*size, 1<<20)
		if need != 0 || added != 2 {
			t.Fatalf("need %d added %d", need, added)
		}
		if p := page(t, b); p.Count != 2 || !p.More {
			t.Fatalf("page %+v", p)
		}
	})
	t.Run("soft limit after first", func(t *testing.T) {
		b, _, added := fill(1<<20, PageHeaderSize+1)
		if added != 1 {
			t.Fatalf("added %d, want 1 (the first item may exceed the soft limit)", added)
		}
		if p := page(t, b); p.Count != 1 || !p.More {
			t.Fatalf("page %+v", p)
		}
	})
	t.Run("first does not fit", func(t *testing.T) {
		b, need, added := fill(PageHeaderSize+size-1, 1<<20)
		if b != nil || added != 0 || need != PageHeaderSize+size {
			t.Fatalf("page %v added %d need %d", b, added, need)
		}
	})
	t.Run("empty", func(t *testing.T) {
		w := NewPageWriter(PageHeaderSize, 1<<20)
		b, need := w.Finish()
		if need != 0 || len(b) != PageHeaderSize {
			t.Fatalf("page %v need %d", b, need)
		}
		if p := page(t, b); p.Count != 0 || p.More {
			t.Fatalf("page %+v", p)
		}
	})
	t.Run("capacity below header", func(t *testing.T) {
		for _, capacity := range []int{0, 1, PageHeaderSize - 1} {
			if b, need := NewPageWriter(capacity, 1<<20).Finish(); b != nil || need != PageHeaderSize {
				t.Fatalf("cap %d: page %v need %d", capacity, b, need)
			}
		}
	})
	t.Run("dir entries", func(t *testing.T) {
		w := NewPageWriter(PageHeaderSize+DirEntryHeaderSize+1, 1<<20)
		if !w.AddDirEntry(DirEntry{Type: TypeDir, Name: "d"}) || w.AddDirEntry(DirEntry{Type: TypeFile, Name: "f"}) {
			t.Fatal("want exactly one entry to fit")
		}
		b, _ := w.Finish()
		e, _, err := ParseDirEntry(b[PageHeaderSize:])
		if err != nil || e != (DirEntry{Type: TypeDir, Name: "d"}) {
			t.Fatalf("entry %+v, %v", e, err)
		}
	})
}

func TestSignatures(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range HostFunctions() {
		if seen[s.Name] {
			t.Fatalf("duplicate host function %s", s.Name)
		}
		seen[s.Name] = true
		if len(s.Results) != 1 {
			t.Fatalf("%s: %d results", s, len(s.Results))
		}
	}
	if got := HostFunctions()[7].String(); got != "stage_write(i32, i32, i32, i32, i32, i32, i32) -> i32" {
		t.Fatalf("String() = %q", got)
	}
}

func TestStatus(t *testing.T) {
	var err error = ErrDenied
	if !errors.Is(err, ErrDenied) || errors.Is(err, ErrLimit) {
		t.Fatal("Status does not match itself with errors.Is")
	}
	if !ErrIO.IsError() || Unchanged.IsError() || OK.IsError() {
		t.Fatal("IsError")
	}
	if Status(-99).Error() != "abi: status -99" {
		t.Fatal(Status(-99).Error())
	}
}

// TestPageWriterInto checks that encoding into the guest's buffer gives the
// page NewPageWriter gives, in that buffer, and writes nothing past its
// length nor anything at all when the first item does not fit.
func TestPageWriterInto(t *testing.T) {
	recs := []Record{
		{Op: OpPut, Key: "a", Value: make([]byte, 10)},
		{Op: OpPut, Key: "b", Value: make([]byte, 300)},
		{Op: OpPut, Key: "c", Value: make([]byte, 10)},
	}
	const guard = 0xAA
	for _, capacity := range []int{0, 1, PageHeaderSize - 1, PageHeaderSize, PageHeaderSize + recs[0].Size() - 1, PageHeaderSize + recs[0].Size(), 200, 400, 1 << 12} {
		for _, soft := range []int{PageHeaderSize + 1, 1 << 20} {
			want, wantNeed := fillPage(NewPageWriter(capacity, soft), recs)
			mem := bytes.Repeat([]byte{guard}, capacity+64)
			got, need := fillPage(NewPageWriterInto(mem[:capacity], soft), recs)
			if !bytes.Equal(got, want) || need != wantNeed {
				t.Fatalf("cap %d soft %d: page %x need %d, want %x need %d", capacity, soft, got, need, want, wantNeed)
			}
			if got != nil && &got[0] != &mem[0] {
				t.Fatalf("cap %d soft %d: page not encoded in the buffer", capacity, soft)
			}
			written := len(got)
			if got == nil {
				written = 0
			}
			for i, c := range mem[written:] {
				if c != guard {
					t.Fatalf("cap %d soft %d: byte %d past the page written", capacity, soft, written+i)
				}
			}
		}
	}
}

// fillPage adds recs to w until one does not fit and finishes the page.
func fillPage(w *PageWriter, recs []Record) ([]byte, int) {
	for _, r := range recs {
		if !w.AddRecord(r) {
			break
		}
	}
	return w.Finish()
}

func TestConfigKeys(t *testing.T) {
	cfg := map[string]string{"prefix": "a.", "hook": "", "": "the empty key", "b=c,d": "x", "ü": "y"}
	b := AppendConfigKeys([]byte("x"), cfg)
	if want := "x\x00b=c,d\x00hook\x00prefix\x00ü\x00"; string(b) != want {
		t.Fatalf("encoding %q, want %q", b, want)
	}
	keys, err := ParseConfigKeys(b[1:])
	if err != nil || strings.Join(keys, "|") != "|b=c,d|hook|prefix|ü" {
		t.Fatalf("ParseConfigKeys = %q, %v", keys, err)
	}
	if b := AppendConfigKeys(nil, nil); len(b) != 0 {
		t.Fatalf("no configuration encodes as %q", b)
	}
	if keys, err := ParseConfigKeys(nil); keys != nil || err != nil {
		t.Fatalf("ParseConfigKeys(nil) = %q, %v", keys, err)
	}
	for in, want := range map[string]string{
		"a":           `configuration key "a" is not NUL-terminated`,
		"a\x00b":      `configuration key "b" is not NUL-terminated`,
		"b\x00a\x00":  `configuration key "a" does not sort after "b"`,
		"a\x00a\x00":  `configuration key "a" does not sort after "a"`,
		"a\x00\x00":   `configuration key "" does not sort after "a"`,
		"\x00\x00":    `configuration key "" does not sort after ""`,
		"k\x00" + "z": `configuration key "z" is not NUL-terminated`,
	} {
		if _, err := ParseConfigKeys([]byte(in)); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseConfigKeys(%q) = %v, want %q", in, err, want)
		}
	}
	if err := CheckConfigKey("a\x00b"); err == nil || !strings.Contains(err.Error(), `configuration key "a\x00b" holds a NUL byte`) {
		t.Errorf("CheckConfigKey of a key with a NUL = %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("AppendConfigKeys encoded a key holding a NUL byte")
		}
	}()
	AppendConfigKeys(nil, map[string]string{"a\x00b": ""})
}
