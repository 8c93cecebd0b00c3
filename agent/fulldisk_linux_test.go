package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/rootonly"
)

// A disk fold whose data_dir fills up fails its watch, loudly (the status
// names the full disk), and the agent keeps running: Pebble, left to find
// its log unwritable, panics and takes every watch down, and its restart
// retries a flush for ever without a word. Once space is freed the watch
// catches up.
func TestDiskFoldOnAFullDiskFailsItsWatchAndRecovers(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "alpha")
	data := filepath.Join(f.dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	rootonly.Tmpfs(t, data, 256<<20)
	a, stop := f.start(f.config(strings.Replace(filesConfig, `bucket = "cfg"`, `bucket = "cfg"
  fold   = "disk"`, 1)))
	defer stop()
	waitReady(t, a)

	// Fill the disk but 2 MiB, and write more than that, in batches small
	// enough to go through Pebble's log. The filler grows until the disk is
	// full, then gives 2 MiB back: the agent writes meanwhile too.
	filler := filepath.Join(data, "filler")
	fill, err := os.OpenFile(filler, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	var size int64
	for {
		n, err := fill.Write(chunk)
		size += int64(n)
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := errors.Join(fill.Truncate(size-(2<<20)), fill.Close()); err != nil {
		t.Fatal(err)
	}
	value := strings.Repeat("v", 200<<10)
	for i := range 16 {
		f.put("cfg", fmt.Sprintf("files.big%02d", i), value)
		time.Sleep(50 * time.Millisecond) // past the batch window
	}
	waitFor(t, "the watch failing on the full disk", func() bool {
		st := a.Status()[0]
		return st.State == stateFailing && strings.Contains(st.LastError, "no space left on device")
	})

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(f.dir, "out")
	waitFor(t, "the watch caught up", func() bool {
		return a.Status()[0].State == stateReady && readFile(filepath.Join(out, "big15")) == value
	})
}
