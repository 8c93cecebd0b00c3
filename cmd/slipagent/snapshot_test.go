package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot"
)

// V3 of the upstream vectors: a log with a delete (not compact), and its compaction.
const (
	v3Hex  = "5047535302006283d7a00106006e6f64652e6102000000763108000000000000000129dd21fb0106006e6f64652e6202000000763208000000000000000262e65a060206006e6f64652e61080000000000000003d7206c2a03080000000000000003"
	v3cHex = "50475353020029dd21fb0106006e6f64652e62020000007632080000000000000002d7206c2a03080000000000000003"
)

func fileFrom(t *testing.T, hexBytes string, extra ...byte) (string, []byte) {
	t.Helper()
	b, err := hex.DecodeString(hexBytes)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, extra...)
	p := filepath.Join(t.TempDir(), "fold.snap")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, b
}

func unchanged(t *testing.T, p string, want []byte) {
	t.Helper()
	if got, _ := os.ReadFile(p); !bytes.Equal(got, want) {
		t.Fatalf("the command modified %s", p)
	}
}

// refusedFile is V3 with a CRC failure in its first record (data follows).
func refusedFile(t *testing.T) (string, []byte) {
	p, b := fileFrom(t, v3Hex)
	b[6] ^= 0xff
	os.WriteFile(p, b, 0o644)
	return p, b
}

func TestUsage(t *testing.T) {
	if code, _, errOut := runCmd(t); code != exitUsage || !strings.Contains(errOut, "snapshot") {
		t.Fatalf("no args: %d %q", code, errOut)
	}
	if code, _, _ := runCmd(t, "bogus"); code != exitUsage {
		t.Fatalf("unknown command: %d", code)
	}
	if code, out, _ := runCmd(t, "help"); code != exitOK || !strings.Contains(out, "snapshot") {
		t.Fatalf("help: %d %q", code, out)
	}
	for _, args := range [][]string{{"snapshot"}, {"snapshot", "frobnicate", "x"}, {"snapshot", "dump"}, {"snapshot", "verify", "a", "b"}, {"snapshot", "dump", "--bogus", "x"}} {
		if code, _, _ := runCmd(t, args...); code != exitUsage {
			t.Fatalf("%q: exit %d, want %d", args, code, exitUsage)
		}
	}
}

func TestSnapshotInspect(t *testing.T) {
	p, b := fileFrom(t, v3Hex, 0x11, 0x22) // plus a torn tail
	code, out, _ := runCmd(t, "snapshot", "inspect", p)
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"size:             100 bytes", "2 put, 1 delete, 1 cursor", "keys:             1",
		"cursor:           rev 3 (0x0000000000000003)", "compacted size:   48 bytes (ratio 2.08)",
		"first bad offset: 98 (torn tail of 2 bytes", "rewrites it compacted"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	unchanged(t, p, b)

	p, b = refusedFile(t)
	code, out, _ = runCmd(t, "snapshot", "inspect", p)
	if code != exitFailure || !strings.Contains(out, "first bad offset: 6") || !strings.Contains(out, "refuses") {
		t.Fatalf("refused file: exit %d\n%s", code, out)
	}
	unchanged(t, p, b)
}

func TestSnapshotVerify(t *testing.T) {
	p, b := fileFrom(t, v3Hex)
	code, out, _ := runCmd(t, "snapshot", "verify", p)
	if code != exitOK || !strings.Contains(out, "ok, 1 key at cursor rev 3") || !strings.Contains(out, "compacted") {
		t.Fatalf("exit %d: %q", code, out)
	}
	unchanged(t, p, b)
	p, b = refusedFile(t)
	if code, _, errOut := runCmd(t, "snapshot", "verify", p); code != exitFailure || !strings.Contains(errOut, "corrupted") {
		t.Fatalf("refused file: exit %d %q", code, errOut)
	}
	unchanged(t, p, b)
	if code, _, _ := runCmd(t, "snapshot", "verify", filepath.Join(t.TempDir(), "absent")); code != exitFailure {
		t.Fatalf("missing file: exit %d", code)
	}
}

func TestSnapshotDumpJSON(t *testing.T) {
	tenByte, _ := kvcore.VersionFromBytes([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	p := filepath.Join(t.TempDir(), "fold.snap")
	w, err := snapshot.OpenWriter(p, snapshot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.WriteUpdate(kvcore.Update{Op: kvcore.OpPut, Key: "b", Value: []byte{0, 0xff}, Version: kvcore.RevisionVersion(2)})
	w.WriteUpdate(kvcore.Update{Op: kvcore.OpPut, Key: "a<&>", Value: []byte("x"), Version: tenByte})
	w.WriteUpdate(kvcore.Update{Op: kvcore.OpPut, Key: "b", Value: []byte("v"), Version: kvcore.RevisionVersion(3)})
	w.Checkpoint(kvcore.RevisionCursor(3))
	w.Close()
	before, _ := os.ReadFile(p)
	for _, args := range [][]string{{"snapshot", "dump", "--json", p}, {"snapshot", "dump", p, "-json"}} {
		code, out, _ := runCmd(t, args...)
		if code != exitOK {
			t.Fatalf("exit %d", code)
		}
		want := `{"cursor":"0000000000000003","entries":[{"key":"a<&>","value":"eA==","version":"0102030405060708090a"},{"key":"b","value":"dg==","version":"0000000000000003"}]}` + "\n"
		if out != want {
			t.Fatalf("dump --json =\n%s\nwant\n%s", out, want)
		}
	}
	unchanged(t, p, before) // not compact, yet dump leaves it alone

	p, _ = fileFrom(t, "504753530200") // header only: no usable snapshot
	if code, out, _ := runCmd(t, "snapshot", "dump", "--json", p); code != exitOK || out != `{"cursor":null,"entries":[]}`+"\n" {
		t.Fatalf("empty: %d %s", code, out)
	}
}

func TestSnapshotDumpJSONErrors(t *testing.T) {
	decode := func(out string) dumpError {
		var e dumpError
		dec := json.NewDecoder(strings.NewReader(out))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("%v: %q", err, out)
		}
		return e
	}
	p, b := refusedFile(t)
	code, out, _ := runCmd(t, "snapshot", "dump", "--json", p)
	if e := decode(out); code != exitFailure || e.Error.Kind != "corrupted" || e.Error.Offset != 6 || e.Error.Message == "" {
		t.Fatalf("exit %d: %+v", code, e)
	}
	unchanged(t, p, b)
	p, _ = fileFrom(t, "5047535303") // too short
	if e := decode(func() string { _, o, _ := runCmd(t, "snapshot", "dump", "--json", p); return o }()); e.Error.Kind != "invalid_format" || e.Error.Offset != 0 {
		t.Fatalf("%+v", e)
	}
	missing := filepath.Join(t.TempDir(), "absent")
	if e := decode(func() string { _, o, _ := runCmd(t, "snapshot", "dump", "--json", missing); return o }()); e.Error.Kind != "io" {
		t.Fatalf("%+v", e)
	}
}

func TestSnapshotDumpText(t *testing.T) {
	p, _ := fileFrom(t, v3cHex)
	code, out, _ := runCmd(t, "snapshot", "dump", p)
	if code != exitOK || out != "cursor: rev 3 (0x0000000000000003)\nnode.b\trev 2\t\"v2\"\n" {
		t.Fatalf("exit %d: %q", code, out)
	}
}

func TestSnapshotRepair(t *testing.T) {
	p, _ := fileFrom(t, v3Hex, 0, 0, 0) // compactable, with zero slack
	code, out, _ := runCmd(t, "snapshot", "repair", p)
	if code != exitOK || !strings.Contains(out, "rewrote it compacted") || !strings.Contains(out, "101 -> 48 bytes") {
		t.Fatalf("exit %d: %q", code, out)
	}
	want, _ := hex.DecodeString(v3cHex)
	unchanged(t, p, want)
	if code, out, _ := runCmd(t, "snapshot", "repair", p); code != exitOK || !strings.Contains(out, "nothing to repair") {
		t.Fatalf("second repair: %d %q", code, out)
	}

	// A delete-only log is reset to the bare header.
	p, _ = fileFrom(t, "5047535302009d5a8e1f0201006b080000000000000009")
	if code, out, _ := runCmd(t, "snapshot", "repair", p); code != exitOK || !strings.Contains(out, "bare header") {
		t.Fatalf("reset: %d %q", code, out)
	}
	unchanged(t, p, []byte("PGSS\x02\x00"))

	// A file loading refuses for a bad first record is cut to the header.
	p, _ = refusedFile(t)
	if code, out, errOut := runCmd(t, "snapshot", "repair", p); code != exitOK || !strings.Contains(out, "cut the damaged tail at offset 6") {
		t.Fatalf("refused: %d %q %q", code, out, errOut)
	}
	unchanged(t, p, []byte("PGSS\x02\x00"))
}

// A fold with a torn tail holding a hole of zeros (a power loss) is cut
// back to the records before the hole, byte for byte.
func TestSnapshotRepairCutsATornTailWithAHole(t *testing.T) {
	kept, _ := hex.DecodeString(v3Hex)
	hole := make([]byte, 100)
	p, b := fileFrom(t, v3Hex, append(hole, kept[6:40]...)...)
	if code, _, _ := runCmd(t, "snapshot", "verify", p); code != exitFailure {
		t.Fatal("the damaged file verifies")
	}
	code, out, errOut := runCmd(t, "snapshot", "repair", p)
	if code != exitOK || !strings.Contains(out, fmt.Sprintf("cut the damaged tail at offset %d", len(kept))) ||
		!strings.Contains(out, fmt.Sprintf("dropped %d of %d bytes", len(b)-len(kept), len(b))) || !strings.Contains(out, "zero hole") {
		t.Fatalf("exit %d: %q %q", code, out, errOut)
	}
	unchanged(t, p, kept)
	if code, out, _ := runCmd(t, "snapshot", "dump", "--json", p); code != exitOK || !strings.Contains(out, `"key":"node.b"`) {
		t.Fatalf("dump after the cut: %d %q", code, out)
	}
}

// A file with a damaged header cannot be salvaged: repair says the fold is a
// cache the agent rebuilds, and -force moves it aside.
func TestSnapshotRepairForceMovesAnUnsalvageableFileAside(t *testing.T) {
	p, b := fileFrom(t, "5a5a5a5a0200"+v3Hex[12:])
	code, _, errOut := runCmd(t, "snapshot", "repair", p)
	if code != exitFailure || !strings.Contains(errOut, "cannot be salvaged") || !strings.Contains(errOut, "cache") ||
		!strings.Contains(errOut, "-force") || !strings.Contains(errOut, "untouched") {
		t.Fatalf("exit %d: %q", code, errOut)
	}
	unchanged(t, p, b)

	code, out, errOut := runCmd(t, "snapshot", "repair", "-force", p)
	if code != exitOK || !strings.Contains(out, "moved it aside to "+p+".quarantined-") {
		t.Fatalf("-force: exit %d: %q %q", code, out, errOut)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the file is still in place (%v)", err)
	}
	moved, _ := filepath.Glob(p + ".quarantined-*")
	if len(moved) != 1 {
		t.Fatalf("moved copies: %v", moved)
	}
	unchanged(t, moved[0], b)
}

// While a fold has the file open (a running agent), repair refuses and
// leaves it alone; inspect, verify and dump still read it.
func TestSnapshotRepairRefusesAnOpenFold(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fold.snap")
	fold, err := snapshot.Open(p, snapshot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fold.Close()
	ctx := context.Background()
	for rev := uint64(1); rev <= 2; rev++ { // the second overwrites a: the file is compactable
		up := kvcore.Update{Op: kvcore.OpPut, Key: "a", Value: []byte("v"), Version: kvcore.RevisionVersion(rev)}
		if err := fold.Apply(ctx, []kvcore.Update{up}, kvcore.RevisionCursor(rev)); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := os.ReadFile(p)
	code, _, errOut := runCmd(t, "snapshot", "repair", p)
	if code != exitFailure || !strings.Contains(errOut, "locked") || !strings.Contains(errOut, "stop the agent") {
		t.Fatalf("repair of an open fold: exit %d %q", code, errOut)
	}
	unchanged(t, p, before)
	for _, sub := range []string{"inspect", "verify", "dump"} {
		if code, out, errOut := runCmd(t, "snapshot", sub, p); code != exitOK {
			t.Fatalf("%s of an open fold: exit %d %q %q", sub, code, out, errOut)
		}
	}
	unchanged(t, p, before)
}

// export writes an artifact of a fold without touching it (a torn tail
// included, as an agent appending meanwhile may leave in the copy); import
// verifies it and rebuilds the same fold; a tampered artifact and an
// existing destination are refused, leaving nothing behind.
func TestSnapshotExportImport(t *testing.T) {
	src, orig := fileFrom(t, v3Hex, 0x07) // a torn tail of one byte
	art := filepath.Join(t.TempDir(), "artifact")
	code, out, errOut := runCmd(t, "snapshot", "export", src, art)
	if code != exitOK || !strings.Contains(out, "exported "+src+" to "+art+": ") {
		t.Fatalf("export: %d %q %q", code, out, errOut)
	}
	unchanged(t, src, orig)
	if _, err := os.Stat(filepath.Join(art, "MANIFEST.json")); err != nil {
		t.Fatal(err)
	}

	dst := filepath.Join(t.TempDir(), "fold.snap")
	if code, out, errOut := runCmd(t, "snapshot", "import", art, dst); code != exitOK || !strings.Contains(out, "imported "+art+" to "+dst) {
		t.Fatalf("import: %d %q %q", code, out, errOut)
	}
	_, want, _ := runCmd(t, "snapshot", "dump", "--json", src)
	_, got, _ := runCmd(t, "snapshot", "dump", "--json", dst)
	if got != want || !strings.Contains(want, `"cursor":"`) {
		t.Fatalf("imported fold dumps\n%s\nwant\n%s", got, want)
	}
	// A taken destination is the crate's ArtifactInvalid, in its words
	// (upstream-spec.md, artifact rule 1).
	if code, _, errOut := runCmd(t, "snapshot", "import", art, dst); code != exitFailure || !strings.Contains(errOut, "invalid snapshot artifact: destination "+dst+" already exists") {
		t.Fatalf("import over an existing fold: %d %q, want the destination named as existing", code, errOut)
	}
	if code, _, errOut := runCmd(t, "snapshot", "export", src, art); code != exitFailure || !strings.Contains(errOut, "invalid snapshot artifact: destination "+art+" exists and is not empty") {
		t.Fatalf("export over an artifact: %d %q, want the destination named as taken", code, errOut)
	}

	payload := filepath.Join(art, "data", "fold.snap")
	b, err := os.ReadFile(payload)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0xff
	if err := os.WriteFile(payload, b, 0o600); err != nil {
		t.Fatal(err)
	}
	dst2 := filepath.Join(t.TempDir(), "fold.snap")
	if code, _, errOut := runCmd(t, "snapshot", "import", art, dst2); code != exitFailure || !strings.Contains(errOut, "slipagent snapshot import: ") {
		t.Fatalf("import of a tampered artifact: %d %q", code, errOut)
	}
	if _, err := os.Stat(dst2); !os.IsNotExist(err) {
		t.Fatalf("a refused import left %s: %v", dst2, err)
	}
	if code, _, _ := runCmd(t, "snapshot", "export", src); code != exitUsage {
		t.Fatalf("export with one argument: exit %d", code)
	}
}

// export names the file it was given when it refuses it, not the copy it
// reads; a disk fold (a directory) is refused as one.
func TestSnapshotExportRefusals(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.snap")
	os.WriteFile(garbage, []byte("not a snapshot at all"), 0o600)
	code, _, errOut := runCmd(t, "snapshot", "export", garbage, filepath.Join(dir, "a1"))
	if code != exitFailure || !strings.Contains(errOut, "snapshot: "+garbage+": invalid format at offset 0") || strings.Count(errOut, garbage) != 1 || strings.Contains(errOut, "slipagent-export-") {
		t.Errorf("export of a file that is no fold: %d %q, want it named once, and no temporary copy", code, errOut)
	}
	disk := filepath.Join(dir, "fold.pebble")
	os.Mkdir(disk, 0o700)
	os.WriteFile(filepath.Join(disk, "CURRENT"), []byte("MANIFEST-000001\n"), 0o600)
	code, _, errOut = runCmd(t, "snapshot", "export", disk, filepath.Join(dir, "a2"))
	want := "slipagent snapshot export: " + disk + ` is a directory, not a fold file: disk folds (fold = "disk") cannot be exported, only append-log folds (fold = "memory")` + "\n"
	if code != exitFailure || errOut != want {
		t.Errorf("export of a disk fold: %d %q, want %q", code, errOut, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "a2")); !os.IsNotExist(err) {
		t.Errorf("a refused export left its destination: %v", err)
	}
}
