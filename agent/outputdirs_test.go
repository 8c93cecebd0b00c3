package agent

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/slipstreamkv/slipstream/internal/logtest"
	"github.com/slipstreamkv/slipstream/plugins/abi"
)

// The staging files a crash left in an output are removed at start and
// logged on one line of bounded length: a crash in the middle of a large
// commit leaves thousands.
func TestStagingLeftoversAreLoggedByCount(t *testing.T) {
	out := t.TempDir()
	for i := range 25 {
		if err := os.WriteFile(filepath.Join(out, fmt.Sprintf("%sf%02d.tmp", abi.StagePrefix, i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var logs logtest.Buffer
	r := &watchRunner{conf: &WatchConf{Name: "w", Outputs: []*OutputConf{{Name: "files", Dir: out}}}, log: slog.New(slog.NewTextHandler(&logs, nil))}
	if _, err := r.outputs(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("left %d staging files", len(entries))
	}
	if logs.Count(`msg="removed staging files left by a crash" output=files files=25 first=`) != 1 || logs.Count(abi.StagePrefix+"f10.tmp") != 0 {
		t.Errorf("want one line counting 25 files and naming the first 10:\n%s", logs.String())
	}
}
