package agent

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/slipstreamkv/slipstream/internal/rootonly"
)

// TestPlanCheckAsAnotherUserReadsTheStagedFiles: a check with user set
// reads the staged copies in plan as it reads the staged files of a real
// run, and the plan's scratch directory opens to its group only, for
// traversal: the copies' own modes decide the rest.
func TestPlanCheckAsAnotherUserReadsTheStagedFiles(t *testing.T) {
	rootonly.Require(t, "switching a check's user")
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	ownOutput := `output "files" {
    dir   = "$DIR/out"
    owner = "nobody"
    mode  = "0600"
  }`
	for _, c := range []struct {
		name, output string
		ownDir       bool // the output directory is nobody's, mode 0700
	}{
		{"a file every user reads", `output "files" { dir = "$DIR/out" }`, false},
		{"a file of the hook's user alone", ownOutput, false},
		{"in a directory of the hook's user alone", ownOutput, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			planCheckAsNobody(t, nobody, c.output, c.ownDir)
		})
	}
}

func planCheckAsNobody(t *testing.T, nobody *user.User, output string, ownDir bool) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "1")
	if ownDir {
		uid, _ := strconv.Atoi(nobody.Uid)
		dir := filepath.Join(f.dir, "out")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, uid, -1); err != nil {
			t.Fatal(err)
		}
	}
	src := strings.Replace(filesConfig, `hook "changed" {`, `hook "changed" {
    user  = "nobody"
    check = ["sh", "-c", "echo \"$SLIPAGENT_STAGED\" | cut -f1 | while read -r f; do cat \"$f\" > /dev/null || exit 1; done"]`, 1)
	src = strings.Replace(src, `output "files" { dir = "$DIR/out" }`, output, 1)
	a := f.agent(f.config(src))
	var plans []*WatchPlan
	err := a.Plan(context.Background(), nil, func(p *WatchPlan) error {
		plans = append(plans, p)
		scratch := filepath.Dir(filepath.Dir(filepath.Dir(p.Files[0].New))) // <scratch>/out/files/a.conf
		fi, err := os.Stat(scratch)
		if err != nil {
			return err
		}
		gid, _ := strconv.Atoi(nobody.Gid)
		if fi.Mode().Perm() != 0o710 || fi.Sys().(*syscall.Stat_t).Gid != uint32(gid) {
			t.Errorf("scratch directory %s: mode %v group %d, want 0710 and nobody's group %d", scratch, fi.Mode().Perm(), fi.Sys().(*syscall.Stat_t).Gid, gid)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(plans) != 1 || len(plans[0].Checks) != 1 {
		t.Fatalf("plans %+v, want one with one check", plans)
	}
	if c := plans[0].Checks[0]; c.Err != nil || c.NotRun != "" {
		t.Errorf("check of hook %s: err %v, not run %q; want it passed, as in a real run", c.Hook, c.Err, c.NotRun)
	}
}
