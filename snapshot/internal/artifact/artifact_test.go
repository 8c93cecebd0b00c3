package artifact

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
)

func hashHex(t *testing.T, b []byte) string {
	t.Helper()
	_, sum, err := hashFile(bytes.NewReader(b), nil)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func TestBlake3Vectors(t *testing.T) {
	for in, want := range map[string]string{
		"":    "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
		"abc": "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85",
	} {
		if got := hashHex(t, []byte(in)); got != want {
			t.Fatalf("blake3(%q) = %s", in, got)
		}
	}
}

// The manifest bytes are exactly the Rust crate's (spec §9.2 example).
func TestManifestMatchesRustBytes(t *testing.T) {
	v2 := []byte("PGSS\x02\x00\x48\x4f\x85\x77\x01\x01\x00a\x01\x00\x00\x00b\x08\x00\x00\x00\x00\x00\x00\x00\x05" +
		"\xe2\x85\x0f\xc3\x03\x08\x00\x00\x00\x00\x00\x00\x00\x05")
	m := &Manifest{SchemaVersion: 1, Backend: "append-log", BackendVersion: "2", CursorHex: "0000000000000005",
		CreatedAtUnix: 1700000000, Files: []File{{Path: "data/fold.snap", Size: int64(len(v2)), Blake3: hashHex(t, v2)}}}
	if m.Files[0].Blake3 != "245e2bdc6c0d28191f158736862c7ca59045feebd5e1360196ac9054ef30f7a7" {
		t.Fatalf("payload digest %s", m.Files[0].Blake3)
	}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 310 || hashHex(t, b) != "463b34198942883ec9a3e3c24bff424f50388c81977875707f41f62f8b14176f" {
		t.Fatalf("manifest (%d bytes) differs from the Rust crate's:\n%s", len(b), b)
	}
}

func TestManifestRoundTrips(t *testing.T) {
	ten, _ := kvcore.CursorFromBytes([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	for _, c := range []kvcore.Cursor{kvcore.RevisionCursor(184467), {}, ten} {
		m := &Manifest{SchemaVersion: 1, Backend: "append-log", BackendVersion: "2", CursorHex: c.Hex(),
			CreatedAtUnix: 1765400000, Files: []File{{Path: "data/fold.snap", Size: 42, Blake3: strings.Repeat("ab", 32)}}}
		b, _ := m.Encode()
		got, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if gc, _ := got.Cursor(); gc != c || got.Files[0] != m.Files[0] || got.CreatedAtUnix != m.CreatedAtUnix {
			t.Fatalf("round trip of %v gave %+v", c, got)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	good := `{"schema_version":1,"backend":"b","backend_version":"1","cursor_hex":"%s","created_at_unix":0,"files":[{"path":"%s","size":1,"blake3":"x"}]}`
	cases := map[string]string{
		"cursor zz":        strings.Replace(strings.Replace(good, "%s", "zz", 1), "%s", "data/x", 1),
		"cursor odd":       strings.Replace(strings.Replace(good, "%s", "abc", 1), "%s", "data/x", 1),
		"cursor 11 bytes":  strings.Replace(strings.Replace(good, "%s", "0102030405060708090a0b", 1), "%s", "data/x", 1),
		"schema 2":         strings.Replace(strings.Replace(strings.Replace(good, "%s", "", 1), "%s", "data/x", 1), `"schema_version":1`, `"schema_version":2`, 1),
		"malformed":        "not json at all {{{",
		"unknown field":    strings.Replace(strings.Replace(good, "%s", "", 1), "%s", "data/x", 1)[:1] + `"extra":1,` + strings.Replace(strings.Replace(good, "%s", "", 1), "%s", "data/x", 1)[1:],
		"unknown in files": strings.Replace(strings.Replace(strings.Replace(good, "%s", "", 1), "%s", "data/x", 1), `"size":1`, `"size":1,"mode":7`, 1),
	}
	for _, p := range []string{"../escape", "/abs/path", "data/../escape", `data/a\b`, "nondata/x", "data/", "data", "data//x", "data/./x"} {
		cases["path "+p] = strings.Replace(strings.Replace(good, "%s", "", 1), "%s", strings.ReplaceAll(p, `\`, `\\`), 1)
	}
	for name, in := range cases {
		if _, err := Decode([]byte(in)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if _, err := Decode([]byte("{{{")); !strings.Contains(err.Error(), "malformed") {
		t.Fatal(err)
	}
	b := strings.Replace(strings.Replace(good, "%s", "", 1), "%s", "data/x", 1)
	if _, err := Decode([]byte(strings.Replace(b, `"schema_version":1`, `"schema_version":2`, 1))); !strings.Contains(err.Error(), "schema_version") {
		t.Fatal(err)
	}
}

func TestFilesSortedByComponent(t *testing.T) {
	fs := []File{{Path: "data/a.b"}, {Path: "data/a/b"}, {Path: "data/B"}}
	sortFiles(fs)
	if fs[0].Path != "data/B" || fs[1].Path != "data/a/b" || fs[2].Path != "data/a.b" {
		t.Fatalf("%v", fs)
	}
}

func TestDestinationPreconditions(t *testing.T) {
	dir := t.TempDir()
	if err := checkAvailable(filepath.Join(dir, "absent"), DestDir); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	if err := checkAvailable(empty, DestDir); err != nil {
		t.Fatal(err)
	}
	if err := checkAvailable(empty, DestFile); !errors.Is(err, ErrInvalid) {
		t.Fatalf("an empty directory as a file destination: %v", err)
	}
	if err := checkAvailable(filepath.Join(dir, "absent"), DestFile); err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(dir, "full")
	os.Mkdir(full, 0o755)
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	if err := checkAvailable(full, DestDir); !errors.Is(err, ErrInvalid) {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	if err := checkAvailable(file, DestDir); !errors.Is(err, ErrInvalid) {
		t.Fatal(err)
	}
	if _, _, err := parentOf("/"); !errors.Is(err, ErrInvalid) {
		t.Fatal(err)
	}
}

func stageWithPayload(t *testing.T, dest string) *Stage {
	s, err := NewStage(dest)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(s.DataDir(), "sub"), 0o755)
	os.WriteFile(filepath.Join(s.DataDir(), "real"), []byte("payload"), 0o644)
	os.WriteFile(filepath.Join(s.DataDir(), "sub", "x"), []byte("x"), 0o644)
	return s
}

func TestSealAndVerify(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "artifact")
	m, err := stageWithPayload(t, dest).Seal("test", "1", kvcore.RevisionCursor(9), time.Unix(5, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != 2 || m.Files[0].Path != "data/real" || m.Files[1].Path != "data/sub/x" || m.CursorHex != "0000000000000009" {
		t.Fatalf("%+v", m)
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(dest), ".slipstream-*"))
	if len(leftovers) != 0 {
		t.Fatalf("stage left behind: %q", leftovers)
	}
	staged, err := VerifyAndStage(dest, filepath.Join(t.TempDir(), "imported"), DestDir, "test", func(string) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer staged.Abort()
	if b, _ := os.ReadFile(staged.Path("data/sub/x")); string(b) != "x" {
		t.Fatalf("staged copy holds %q", b)
	}
}

func TestSealRejectsSymlink(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "artifact")
	s := stageWithPayload(t, dest)
	os.Symlink("/etc/passwd", filepath.Join(s.DataDir(), "link"))
	if _, err := s.Seal("test", "1", kvcore.Cursor{}, time.Now()); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "non-regular") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Lstat(dest); !os.IsNotExist(err) {
		t.Fatal("a refused seal created the destination")
	}
}

// §11.H export_stage_fails_closed_when_dest_appears_before_seal.
func TestSealFailsClosedWhenDestAppears(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "artifact")
	s := stageWithPayload(t, dest)
	os.Mkdir(dest, 0o755)
	os.WriteFile(filepath.Join(dest, "stray"), []byte("keep"), 0o644)
	if _, err := s.Seal("test", "1", kvcore.Cursor{}, time.Now()); !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "stray")); err != nil || string(b) != "keep" {
		t.Fatal("the stray file was touched")
	}
}

func TestVerifyRejectsResizedFile(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "artifact")
	if _, err := stageWithPayload(t, dest).Seal("test", "1", kvcore.Cursor{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dest, "data", "real"), []byte("payload plus"), 0o644)
	_, err := VerifyAndStage(dest, filepath.Join(t.TempDir(), "imported"), DestDir, "test", func(string) error { return nil })
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "manifest says 7") {
		t.Fatalf("err = %v", err)
	}
}
