package abi

import (
	"bytes"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseInput feeds arbitrary bytes to the input decoder, as the SDK runs
// it. It must never panic or read out of bounds, and whatever it accepts must
// re-encode to exactly the bytes it consumed (the encoding is canonical).
func FuzzParseInput(f *testing.F) {
	f.Add(encodeInput(Header{Kind: KindApply, Watch: "w", Cursor: Cursor{Revision: 1, Version: []byte{0, 1}}}, sampleRecords()))
	f.Add(encodeInput(Header{Kind: KindRender, Watch: "render"}, nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		h, n, err := ParseHeader(in)
		if err != nil {
			return
		}
		if got := AppendHeader(nil, h); !bytes.Equal(got, in[:n]) {
			t.Fatalf("header re-encodes to %x, consumed %x", got, in[:n])
		}
		rest := in[n:]
		raws, total, rawErr := AppendRawRecords(nil, rest, h.Count)
		consumed := 0
		for i := uint32(0); i < h.Count; i++ {
			r, m, err := ParseRecord(rest[consumed:])
			if err != nil {
				if rawErr == nil {
					t.Fatalf("AppendRawRecords accepted what ParseRecord refuses: %v", err)
				}
				return
			}
			if got := AppendRecord(nil, r); !bytes.Equal(got, rest[consumed:consumed+m]) {
				t.Fatalf("record re-encodes to %x, consumed %x", got, rest[consumed:consumed+m])
			}
			if int(i) >= len(raws) {
				t.Fatalf("AppendRawRecords refused record %d, which ParseRecord accepts: %v", i, rawErr)
			}
			if raw := raws[i]; string(raw.Key) != r.Key || !bytes.Equal(raw.Value, r.Value) || raw.Revision != r.Revision {
				t.Fatalf("AppendRawRecords record %d = %+v, ParseRecord gives %+v", i, raw, r)
			}
			consumed += m
		}
		if rawErr != nil || total != consumed {
			t.Fatalf("AppendRawRecords: %d bytes, %v; ParseRecord consumed %d", total, rawErr, consumed)
		}
	})
}

// FuzzRecordRoundTrip encodes arbitrary records as the host does and checks
// the decoder gives them back.
func FuzzRecordRoundTrip(f *testing.F) {
	for _, r := range sampleRecords() {
		f.Add(uint8(r.Op), r.Revision, r.Version, r.Key, r.Value)
	}
	f.Fuzz(func(t *testing.T, op uint8, rev uint64, version []byte, key string, value []byte) {
		r := Record{Op: Op(op%3 + 1), Revision: rev, Version: version, Key: key, Value: value}
		if len(r.Version) > MaxVersionLen {
			r.Version = r.Version[:MaxVersionLen]
		}
		if r.Op != OpPut {
			r.Value = nil
		}
		b := AppendRecord([]byte("prefix"), r)
		got, n, err := ParseRecord(b[len("prefix"):])
		if err != nil {
			t.Fatal(err)
		}
		if n != r.Size() || got.Op != r.Op || got.Revision != rev || got.Key != r.Key ||
			!bytes.Equal(got.Value, r.Value) || !bytes.Equal(got.Version, r.Version) {
			t.Fatalf("round trip of %+v gave %+v (%d bytes)", r, got, n)
		}
	})
}

// FuzzParsePage decodes arbitrary bytes as a view_scan page and as an
// output_list page.
func FuzzParsePage(f *testing.F) {
	w := NewPageWriter(1<<20, 1<<20)
	for _, r := range sampleRecords() {
		w.AddRecord(r)
	}
	page, _ := w.Finish()
	f.Add(page)
	d := NewPageWriter(1<<10, 1<<10)
	d.AddDirEntry(DirEntry{Type: TypeFile, Name: "a.conf"})
	d.AddDirEntry(DirEntry{Type: TypeDir, Name: "sub"})
	dpage, _ := d.Finish()
	f.Add(dpage)
	f.Fuzz(func(t *testing.T, in []byte) {
		p, n, err := ParsePageHeader(in)
		if err != nil {
			return
		}
		recs, ents := in[n:], in[n:]
		for range p.Count {
			if _, m, err := ParseRecord(recs); err == nil {
				recs = recs[m:]
			}
			if e, m, err := ParseDirEntry(ents); err == nil {
				if got := AppendDirEntry(nil, e); !bytes.Equal(got, ents[:m]) {
					t.Fatalf("entry re-encodes to %x, consumed %x", got, ents[:m])
				}
				ents = ents[m:]
			}
		}
	})
}

// FuzzCheckPath checks that every path CheckPath accepts is local, clean and
// free of staging names, whatever the input.
func FuzzCheckPath(f *testing.F) {
	for _, p := range []string{"a/b", "../x", "/abs", "a//b", ".slipstream-x", "a/./b", "ok.conf"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if CheckPath(p) != nil {
			return
		}
		if !filepath.IsLocal(p) || path.Clean(p) != p || hasStageComponent(p) {
			t.Fatalf("CheckPath accepted %q", p)
		}
	})
}

func hasStageComponent(p string) bool {
	for _, c := range strings.Split(p, "/") {
		if strings.HasPrefix(c, StagePrefix) {
			return true
		}
	}
	return false
}

// FuzzParseConfigKeys decodes arbitrary bytes as the result of config_keys:
// whatever it accepts re-encodes to exactly those bytes.
func FuzzParseConfigKeys(f *testing.F) {
	f.Add(AppendConfigKeys(nil, map[string]string{"": "", "hook": "", "prefix": ""}))
	f.Add([]byte("b\x00a\x00"))
	f.Fuzz(func(t *testing.T, in []byte) {
		keys, err := ParseConfigKeys(in)
		if err != nil {
			return
		}
		cfg := map[string]string{}
		for _, k := range keys {
			cfg[k] = ""
		}
		if got := AppendConfigKeys(nil, cfg); !bytes.Equal(got, in) {
			t.Fatalf("%q re-encodes to %q", in, got)
		}
	})
}
