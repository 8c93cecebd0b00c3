package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot"
)

// tree reads every file below dir (path → content).
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			files[p] = string(b)
		}
		return nil
	})
	return files
}

func TestPlanShowsChangesAndChangesNothing(t *testing.T) {
	srv := natstest.Run(t)
	dir := t.TempDir()
	const check = `check = ["sh", "-c", "for f in $(printf '%s' \"$SLIPAGENT_STAGED\" | cut -f1); do ! grep -q bad $f || exit 1; done"]`
	cfg := onceConfig(t, dir, srv.URL(), check)
	kv := kvMust(t, srv.URL())
	kv("put", "cfg", "files.a", "alpha")
	kv("put", "cfg", "files.b", "bravo")

	// A fresh data_dir: a full render of the bucket, nothing written.
	code, out, errOut := runCmd(t, "plan", "-config", cfg)
	if code != exitOK || !strings.Contains(out, "watch cfg: full render at revision 2") || !strings.Contains(out, "+alpha") ||
		!strings.Contains(out, "--- /dev/null\n+++ "+filepath.Join(dir, "out/b")) || !strings.Contains(out, "hook changed would run") || !strings.Contains(out, "check of hook changed: ok") {
		t.Fatalf("plan of a fresh data_dir = %d\n%s\nstderr:\n%s", code, out, errOut)
	}
	if got := tree(t, dir+"/data"); len(got) != 0 {
		t.Errorf("plan wrote into data_dir: %v", slicesKeys(got))
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "a")); !os.IsNotExist(err) {
		t.Errorf("plan wrote an output (%v)", err)
	}

	if code, _, errOut := runCmd(t, "once", "-config", cfg); code != exitOK {
		t.Fatalf("once = %d; %s", code, errOut)
	}
	if code, out, _ := runCmd(t, "plan", "-config", cfg, "-detailed-exitcode"); code != exitOK || !strings.Contains(out, "up to date at revision 2") || !strings.Contains(out, "no changes") {
		t.Errorf("plan after once = %d\n%s", code, out)
	}

	kv("put", "cfg", "files.a", "again")
	kv("delete", "cfg", "files.b")
	before := tree(t, dir+"/data")
	maps.Copy(before, tree(t, dir+"/out"))
	code, out, errOut = runCmd(t, "plan", "-config", cfg, "-watch", "cfg", "-detailed-exitcode")
	wantDiff := "--- " + filepath.Join(dir, "out/a") + "\n+++ " + filepath.Join(dir, "out/a") + "\n@@ -1 +1 @@\n-alpha\n\\ No newline at end of file\n+again\n"
	if code != exitChanges || !strings.Contains(out, "2 updates, revision 2 to 4") || !strings.Contains(out, wantDiff) ||
		!strings.Contains(out, "+++ /dev/null") || !strings.Contains(out, "hook changed would run") {
		t.Fatalf("plan of pending changes = %d, want %d\n%s\nstderr:\n%s", code, exitChanges, out, errOut)
	}
	after := tree(t, dir+"/data")
	maps.Copy(after, tree(t, dir+"/out"))
	if !maps.Equal(before, after) {
		t.Errorf("plan changed the fold, state or outputs:\nbefore %v\nafter  %v", slicesKeys(before), slicesKeys(after))
	}

	// A check that refuses the new files: exit 1, named.
	kv("put", "cfg", "files.c", "bad")
	// Its hook would not run: the batch fails.
	if code, out, _ := runCmd(t, "plan", "-config", cfg); code != exitFailure || !strings.Contains(out, "check of hook changed: FAILED") ||
		!strings.Contains(out, "hook changed would not run: the check of hook changed fails") || strings.Contains(out, "hook changed would run") {
		t.Errorf("plan with a refused file = %d\n%s", code, out)
	}
	// Unless the hook ignores its check's failure: the files would go live
	// and the hook run.
	ignoring := onceConfig(t, dir, srv.URL(), check+"\n    on_failure = \"ignore\"")
	if code, out, _ := runCmd(t, "plan", "-config", ignoring); code != exitOK || !strings.Contains(out, `check of hook changed: FAILED, ignored (on_failure = "ignore"`) ||
		!strings.Contains(out, "hook changed would run") {
		t.Errorf("plan with a refused file, on_failure = ignore = %d\n%s", code, out)
	}
	if code, _, errOut := runCmd(t, "plan", "-config", cfg, "-watch", "nope"); code != exitFailure || !strings.Contains(errOut, `"nope"`) {
		t.Errorf("plan of an unknown watch = %d %q", code, errOut)
	}
	cfg = onceConfig(t, dir, "nats://127.0.0.1:1", "")
	if code, _, errOut := runCmd(t, "plan", "-config", cfg); code != exitUnreachable || !strings.Contains(errOut, "nats://127.0.0.1:1") {
		t.Errorf("plan without a server = %d %q", code, errOut)
	}
}

func slicesKeys(m map[string]string) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// TestPlanOfAWatchLeftFoldingShowsItsFullRender: a watch whose state says it
// stopped while folding (here: as a batch with a delete that kept failing
// leaves it) syncs with a full render when it runs next; plan shows that
// render, not "up to date", so a file no key maps to any more is shown
// removed.
func TestPlanOfAWatchLeftFoldingShowsItsFullRender(t *testing.T) {
	srv := natstest.Run(t)
	dir := t.TempDir()
	cfg := onceConfig(t, dir, srv.URL(), "")
	if code, _, errOut := runCmd(t, "kv", "-server", srv.URL(), "put", "cfg", "files.a", "alpha"); code != exitOK {
		t.Fatalf("kv put: %s", errOut)
	}
	if code, _, errOut := runCmd(t, "once", "-config", cfg); code != exitOK {
		t.Fatalf("once = %d; %s", code, errOut)
	}
	if err := os.WriteFile(filepath.Join(dir, "out", "gone"), []byte("left by a delete never applied"), 0o644); err != nil {
		t.Fatal(err)
	}
	statePath := filepath.Join(dir, "data", "watches", "cfg", "state.json")
	raw, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	st["folding"] = true
	if raw, err = json.Marshal(st); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(statePath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd(t, "plan", "-config", cfg, "-detailed-exitcode")
	if code != exitChanges || !strings.Contains(out, "full render") || !strings.Contains(out, "--- "+filepath.Join(dir, "out/gone")+"\n+++ /dev/null") {
		t.Fatalf("plan of a watch left folding = %d, want %d and the stray file removed\n%s\nstderr:\n%s", code, exitChanges, out, errOut)
	}
}

// TestPlanOfALostOutputRecordShowsItsFullRender: with its record of
// committed outputs deleted or damaged, a watch renders in full at its
// start (it could not tell drift otherwise), so plan shows that render and
// the file edited outside the agent that it restores; it used to say "no
// changes". once then does it.
func TestPlanOfALostOutputRecordShowsItsFullRender(t *testing.T) {
	for _, damage := range []string{"deleted", "damaged", "of a newer version"} {
		t.Run(damage, func(t *testing.T) {
			srv := natstest.Run(t)
			dir := t.TempDir()
			cfg := onceConfig(t, dir, srv.URL(), "")
			kvMust(t, srv.URL())("put", "cfg", "files.a", "alpha")
			if code, _, errOut := runCmd(t, "once", "-config", cfg); code != exitOK {
				t.Fatalf("once = %d; %s", code, errOut)
			}
			a := filepath.Join(dir, "out", "a")
			if err := os.WriteFile(a, []byte("edited\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			record := filepath.Join(dir, "data", "watches", "cfg", "outputs.snap")
			var err error
			switch damage {
			case "deleted":
				err = os.Remove(record)
			case "damaged":
				err = os.WriteFile(record, []byte("PGSS\x02 not a record"), 0o600)
			default: // a's entry in a format no version knows yet
				err = writeFoldEntry(record, "files/a", []byte{0x7f, 1, 2, 3})
			}
			if err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runCmd(t, "plan", "-config", cfg, "-detailed-exitcode")
			if code != exitChanges || !strings.Contains(out, "full render") || !strings.Contains(out, "--- "+a+"\n+++ "+a+"\n@@ -1 +1 @@\n-edited\n+alpha\n") {
				t.Fatalf("plan with the record %s = %d, want %d and a full render restoring a\n%s\nstderr:\n%s", damage, code, exitChanges, out, errOut)
			}
			if code, _, errOut := runCmd(t, "once", "-config", cfg); code != exitOK {
				t.Fatalf("once = %d; %s", code, errOut)
			}
			if got, err := os.ReadFile(a); string(got) != "alpha" {
				t.Errorf("after once, a = %q (%v), want alpha", got, err)
			}
		})
	}
}

// writeFoldEntry puts key in the log fold at path.
func writeFoldEntry(path, key string, value []byte) error {
	log, err := snapshot.Open(path, snapshot.Options{})
	if err != nil {
		return err
	}
	err = log.Apply(context.Background(), []kvcore.Update{{Op: kvcore.OpPut, Key: key, Value: value}}, kvcore.Cursor{})
	return errors.Join(err, log.Close())
}

// TestPlanShowsAModeChange: an output's mode changed in the configuration
// rewrites its files with the same content; plan says so in a line, as no
// content diff can (it printed the file's name with nothing under it).
func TestPlanShowsAModeChange(t *testing.T) {
	srv := natstest.Run(t)
	dir := t.TempDir()
	cfg := onceConfig(t, dir, srv.URL(), "")
	kvMust(t, srv.URL())("put", "cfg", "files.a", "alpha")
	if code, _, errOut := runCmd(t, "once", "-config", cfg); code != exitOK {
		t.Fatalf("once = %d; %s", code, errOut)
	}
	src, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	src = bytes.Replace(src, []byte(`output "files" { dir = "`+out+`" }`), []byte(`output "files" {
    dir  = "`+out+`"
    mode = "0600"
  }`), 1)
	if err := os.WriteFile(cfg, src, 0o644); err != nil {
		t.Fatal(err)
	}
	code, planOut, errOut := runCmd(t, "plan", "-config", cfg, "-detailed-exitcode")
	a := filepath.Join(out, "a")
	if code != exitChanges || !strings.Contains(planOut, "mode of "+a+" changes: 0644 -> 0600\n") || strings.Contains(planOut, "--- "+a) {
		t.Fatalf("plan of a mode change = %d, want %d and the mode line, no content diff\n%s\nstderr:\n%s", code, exitChanges, planOut, errOut)
	}
}

// TestPlanLeavesADirtyFoldAsItIs: plan reads a fold that incremental
// applies left with superseded records without rewriting (compacting) it:
// every file below data_dir stays byte-for-byte as it was, for either kind
// of fold.
func TestPlanLeavesADirtyFoldAsItIs(t *testing.T) {
	for _, fold := range []string{"memory", "disk"} {
		t.Run(fold, func(t *testing.T) {
			srv := natstest.Run(t)
			dir := t.TempDir()
			cfg := onceConfig(t, dir, srv.URL(), "")
			b, _ := os.ReadFile(cfg)
			os.WriteFile(cfg, []byte(strings.Replace(string(b), `plugin = "files"
  output`, `plugin = "files"
  fold = "`+fold+`"
  output`, 1)), 0o644)
			kv := kvMust(t, srv.URL())
			once := func() {
				t.Helper()
				if code, _, errOut := runCmd(t, "once", "-config", cfg); code != exitOK {
					t.Fatalf("once = %d; stderr:\n%s", code, errOut)
				}
			}
			kv("put", "cfg", "files.a", "alpha")
			kv("put", "cfg", "files.b", "bravo")
			once()
			// Superseded records: the fold is dirty.
			kv("put", "cfg", "files.a", "again")
			kv("put", "cfg", "files.c", "charlie")
			kv("put", "cfg", "files.a", "third")
			kv("delete", "cfg", "files.b")
			once()
			kv("put", "cfg", "files.d", "delta")

			before := tree(t, dir+"/data")
			code, out, errOut := runCmd(t, "plan", "-config", cfg, "-detailed-exitcode")
			if code != exitChanges || !strings.Contains(out, "+delta") {
				t.Fatalf("plan = %d, want %d\n%s\nstderr:\n%s", code, exitChanges, out, errOut)
			}
			after := tree(t, dir+"/data")
			for p, b := range before {
				if a, ok := after[p]; !ok || a != b {
					t.Errorf("plan changed %s (%d bytes, was %d; still there: %v)", p, len(a), len(b), ok)
				}
			}
			for p := range after {
				if _, ok := before[p]; !ok {
					t.Errorf("plan wrote %s", p)
				}
			}
		})
	}
}

// TestPlanShowsDriftRepairs: an output edited or removed outside the agent
// is restored by once's drift check, so plan shows its repair, marked as
// such, and counts it as a change; it leaves the drifted files as they are.
// A drifted file that a pending change writes anyway is no repair.
func TestPlanShowsDriftRepairs(t *testing.T) {
	srv := natstest.Run(t)
	dir := t.TempDir()
	cfg := onceConfig(t, dir, srv.URL(), "")
	kv := kvMust(t, srv.URL())
	out := func(name string) string { return filepath.Join(dir, "out", name) }
	snapshot := func() map[string]string {
		files := tree(t, dir+"/data")
		maps.Copy(files, tree(t, dir+"/out"))
		return files
	}
	kv("put", "cfg", "files.k16", "v16")
	kv("put", "cfg", "files.k17", "v17")
	kv("put", "cfg", "files.k18", "v18")
	if code, _, errOut := runCmd(t, "once", "-config", cfg); code != exitOK {
		t.Fatalf("once = %d; %s", code, errOut)
	}
	if err := os.WriteFile(out("k16"), []byte("tampered\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(out("k17")); err != nil {
		t.Fatal(err)
	}
	repairK16 := "  drift repair: " + out("k16") + " was changed outside the agent (content changed)\n" +
		"--- " + out("k16") + "\n+++ " + out("k16") + "\n@@ -1 +1 @@\n-tampered\n+v16\n"
	repairK17 := "  drift repair: " + out("k17") + " was changed outside the agent (missing)\n" +
		"--- /dev/null\n+++ " + out("k17") + "\n@@ -0,0 +1 @@\n+v17\n"

	// Drift alone: the bucket is up to date, the outputs are not.
	before := snapshot()
	code, planOut, errOut := runCmd(t, "plan", "-config", cfg, "-detailed-exitcode")
	if code != exitChanges || !strings.Contains(planOut, "up to date at revision 3") ||
		!strings.Contains(planOut, repairK16) || !strings.Contains(planOut, repairK17) || !strings.Contains(planOut, "hook changed would run") {
		t.Fatalf("plan of drifted outputs = %d, want %d and both repairs\n%s\nstderr:\n%s", code, exitChanges, planOut, errOut)
	}
	if after := snapshot(); !maps.Equal(before, after) {
		t.Errorf("plan changed the fold, state or outputs:\nbefore %v\nafter  %v", before, after)
	}

	// Drift and pending changes, one of them to a drifted file.
	if err := os.WriteFile(out("k18"), []byte("tampered too\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	kv("put", "cfg", "files.k20", "v20")
	kv("put", "cfg", "files.k18", "v18b")
	before = snapshot()
	code, planOut, errOut = runCmd(t, "plan", "-config", cfg, "-detailed-exitcode")
	if code != exitChanges || !strings.Contains(planOut, "2 updates, revision 3 to 5") ||
		!strings.Contains(planOut, repairK16) || !strings.Contains(planOut, repairK17) ||
		!strings.Contains(planOut, "--- /dev/null\n+++ "+out("k20")+"\n@@ -0,0 +1 @@\n+v20\n") ||
		!strings.Contains(planOut, "+v18b") || strings.Contains(planOut, "drift repair: "+out("k18")) || strings.Contains(planOut, "drift repair: "+out("k20")) {
		t.Fatalf("plan of drift and pending changes = %d, want %d, both repairs and k18, k20 as plain changes\n%s\nstderr:\n%s", code, exitChanges, planOut, errOut)
	}
	if after := snapshot(); !maps.Equal(before, after) {
		t.Errorf("plan changed the fold, state or outputs:\nbefore %v\nafter  %v", before, after)
	}

	// once does what plan showed.
	code, _, errOut = runCmd(t, "once", "-config", cfg)
	if code != exitOK || !strings.Contains(errOut, "output changed outside the agent") || !strings.Contains(errOut, out("k16")) {
		t.Fatalf("once = %d, want %d and the drift logged; stderr:\n%s", code, exitOK, errOut)
	}
	for name, want := range map[string]string{"k16": "v16", "k17": "v17", "k18": "v18b", "k20": "v20"} {
		if got, err := os.ReadFile(out(name)); string(got) != want {
			t.Errorf("after once, out/%s = %q (%v), want %q", name, got, err, want)
		}
	}
	if code, planOut, errOut := runCmd(t, "plan", "-config", cfg, "-detailed-exitcode"); code != exitOK || !strings.Contains(planOut, "no changes") {
		t.Errorf("plan after once = %d, want %d and no changes\n%s\nstderr:\n%s", code, exitOK, planOut, errOut)
	}
}
