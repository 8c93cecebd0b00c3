package snapshot

import (
	"bytes"
	"slices"
	"testing"
)

// FuzzLoad feeds arbitrary files to the loader. It must never panic, hang or
// allocate beyond the file's size; and whatever it accepts must compact to
// a file that loads to the same fold and needs no further rewrite. Decoded
// part by part as it is read, it loads exactly as it does whole.
func FuzzLoad(f *testing.F) {
	f.Fuzz(func(t *testing.T, img []byte) {
		rep := inspect(img)
		for _, step := range []int{1, 13} {
			if diff := sameReport(report(replayInSteps(img, step)), rep); diff != "" {
				t.Fatalf("decoded in parts of %d bytes: %s", step, diff)
			}
		}
		if rep.Err != nil {
			if _, ok := rep.BadOffset(); !ok {
				t.Fatalf("refusal %v without an offset", rep.Err)
			}
			return
		}
		x := rep.rep.idx
		var buf bytes.Buffer
		if err := writeCompacted(&buf, &x.ar, x.base, rep.Cursor); err != nil {
			t.Fatal(err)
		}
		if rep.rep.empty() {
			return
		}
		if int64(buf.Len()) != rep.CompactedSize {
			t.Fatalf("compacted image is %d bytes, report says %d", buf.Len(), rep.CompactedSize)
		}
		again := inspect(buf.Bytes())
		if again.Err != nil || again.Action != ActionNone {
			t.Fatalf("compacted image: err %v, action %v", again.Err, again.Action)
		}
		a, b := rep.Snapshot(), again.Snapshot()
		if a.Cursor != b.Cursor || !slices.Equal(kvs(a.Entries), kvs(b.Entries)) {
			t.Fatalf("compaction changed the fold: %v %q -> %v %q", a.Cursor, kvs(a.Entries), b.Cursor, kvs(b.Entries))
		}
	})
}
