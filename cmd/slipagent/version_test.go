package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

// TestVersionStamped: what `make dist` stamps with -ldflags -X is what
// `slipagent version` prints, "+dirty" of the commit included.
func TestVersionStamped(t *testing.T) {
	defer func(v, c string) { stampedVersion, stampedCommit = v, c }(stampedVersion, stampedCommit)
	stampedVersion, stampedCommit = "v1.2.3-4-gabcdef0-dirty", "abcdef0123+dirty"
	// The stamps are link-time variables, set here in this process: the
	// command runs in it too.
	runCmd := func(_ *testing.T, args ...string) (int, string, string) {
		var out bytes.Buffer
		return run(context.Background(), args, &out, io.Discard), out.String(), ""
	}
	code, out, _ := runCmd(t, "version")
	if code != exitOK || !strings.HasPrefix(out, "slipagent v1.2.3-4-gabcdef0-dirty\ncommit:     abcdef0123+dirty\n") {
		t.Errorf("version = %d %q", code, out)
	}
	code, out, _ = runCmd(t, "version", "-json")
	var v buildVersion
	if err := json.Unmarshal([]byte(out), &v); code != exitOK || err != nil {
		t.Fatalf("version -json = %d %q: %v", code, out, err)
	}
	if v.Version != "v1.2.3-4-gabcdef0-dirty" || v.Commit != "abcdef0123" || !v.Modified {
		t.Errorf("version -json = %+v", v)
	}
}
