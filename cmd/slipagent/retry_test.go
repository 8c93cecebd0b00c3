package main

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/natstest"
)

// A value the host refuses (a file over max_file_size) fails the watch;
// correcting it in the bucket makes the running agent ready again with the
// corrected file, and a later change of another key gets through too, with
// no restart: the retried batch does not carry the refused value.
func TestAFixInTheBucketUnsticksAFailingWatch(t *testing.T) {
	srv := natstest.Run(t)
	dir := filesAgentDir(t)
	put := func(key, value string) { t.Helper(); putRev(t, srv.URL(), key, value) }
	put("files.ok", "fine")
	cfg := filesAgentConfig(t, dir, srv.URL(), `limits { max_file_size = "16" }`, "")
	runAgent(t, cfg)
	waitStatus(t, "-config", cfg)

	put("files.big", "0123456789abcdefXYZ") // 19 bytes
	waitStatusFailing(t, cfg, "failing", "max_file_size")

	put("files.big", "small")
	put("files.other", "x")
	want := map[string]string{"big": "small", "other": "x", "ok": "fine"}
	deadline := time.Now().Add(time.Minute)
	for {
		got := map[string]string{}
		for name := range want {
			b, _ := os.ReadFile(filepath.Join(dir, "out", name))
			got[name] = string(b)
		}
		if maps.Equal(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outputs after the fix = %v, want %v", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out := waitStatus(t, "-config", cfg); !strings.Contains(out, "ready") {
		t.Errorf("status after the fix:\n%s", out)
	}
}
