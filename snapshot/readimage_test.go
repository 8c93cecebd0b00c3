package snapshot

import (
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"testing"
)

// replayInSteps replays img handed on step bytes at a time (after the
// header), as an imageReader hands on the parts it has read.
func replayInSteps(img []byte, step int) *replayed {
	n := min(len(img), headerLen)
	return replayParts(img[:n], func(k int) []byte {
		if k >= len(img)-step {
			n = len(img)
		} else {
			n = max(n, k+step)
		}
		return img[:n]
	})
}

// sameReport reports how two reports on one image differ ("" if they do not).
func sameReport(a, b *Report) string {
	ra, rb := a.rep, b.rep // the folds are compared below, by content
	a.rep, b.rep = nil, nil
	sa, sb := fmt.Sprintf("%+v %v", *a, a.Err), fmt.Sprintf("%+v %v", *b, b.Err)
	a.rep, b.rep = ra, rb
	if sa != sb {
		return sa + " vs " + sb
	}
	ea, eb := a.Snapshot(), b.Snapshot()
	if (ea == nil) != (eb == nil) || (ea != nil && (ea.Cursor != eb.Cursor || !slices.Equal(kvs(ea.Entries), kvs(eb.Entries)))) {
		return "snapshots differ"
	}
	return ""
}

// A log decoded part by part while it is read loads exactly as the whole
// image does, wherever the parts end: every decision but "torn tail" is
// final on a prefix, and a torn tail is only decided at the end.
func TestReplayInPartsMatchesWhole(t *testing.T) {
	for _, c := range loadVectors(t).Cases {
		img, err := hex.DecodeString(c.FileHex)
		if err != nil {
			t.Fatal(err)
		}
		whole := inspect(img)
		for _, step := range []int{1, 2, 3, 7, 64} {
			if diff := sameReport(report(replayInSteps(img, step)), whole); diff != "" {
				t.Errorf("%s in steps of %d: %s", c.Name, step, diff)
			}
		}
	}
}

// The reader reads to the end of the file like os.ReadFile, whether the
// file grew or shrank after it was sized, handing on parts as it goes.
func TestImageReaderReadsToTheEnd(t *testing.T) {
	img := image(put("a", "1", 1), put("b", string(make([]byte, 3*readChunk)), 2), cur(2))
	p := writeTemp(t, img)
	for _, size := range []int64{0, 10, int64(len(img)), int64(len(img)) + 100} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		r := readImage(f, size)
		res := replayFrom(r)
		got, done, err := r.wait(1<<62 - 1)
		f.Close()
		if err != nil || !done || !slices.Equal(got, img) {
			t.Fatalf("sized %d: read %d bytes (done %v, %v), want %d", size, len(got), done, err, len(img))
		}
		if diff := sameReport(report(res), inspect(img)); diff != "" {
			t.Fatalf("sized %d: %s", size, diff)
		}
	}
}
