package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// TestARenderKeyOfRelativeOutputDirsIsHonoured: a state that an older
// slipagent wrote, with the render key of output dirs relative to the
// working directory (a relative -config path), owes no full render to the
// same configuration run from the same directory: neither plan nor once
// renders in full.
func TestARenderKeyOfRelativeOutputDirsIsHonoured(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "alpha")
	cfg := f.config(filesConfig)
	if err := f.agent(cfg).Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	// As `slipagent once -config agent.hcl`, run in the configuration's
	// directory, recorded it.
	t.Chdir(f.dir)
	w := cfg.Watches[0]
	rel := *w
	out := *w.Outputs[0]
	out.Dir = "out"
	rel.Outputs = []*OutputConf{&out}
	module, err := os.ReadFile(cfg.Plugins[0].Module)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(module)
	dir := filepath.Join(cfg.DataDir, "watches", w.Name)
	st, err := loadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Rendered != renderKey(w, cfg.Plugins[0], hex.EncodeToString(sum[:])) {
		t.Fatal("the render key is not computed from the module's sha256 as this test assumes")
	}
	st.Rendered = renderKey(&rel, cfg.Plugins[0], hex.EncodeToString(sum[:]))
	if err := st.save(dir); err != nil {
		t.Fatal(err)
	}

	err = f.agent(cfg).Plan(context.Background(), nil, func(p *WatchPlan) error {
		if p.Full || p.Changed() {
			t.Errorf("plan: full %v, files %v, hooks %v; want it up to date", p.Full, p.Files, p.Hooks)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.agent(cfg).Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A full render would have recorded the current key.
	if after, err := loadState(dir); err != nil || after.Rendered != st.Rendered {
		t.Errorf("once rendered in full (state %+v, %v)", after, err)
	}
}
