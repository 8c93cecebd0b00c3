package transport

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot"
)

func TestUploadDownloadRoundTrip(t *testing.T) {
	r := newRig(t)
	out, p := r.upload(t, "routes/log", 5)
	if !out.Published {
		t.Fatalf("first upload not published: %+v", out)
	}
	if want := "artifacts/routes/log.payloads/0000000000000005-"; !strings.HasPrefix(p.Payload, want) || !strings.HasSuffix(p.Payload, ".tar") {
		t.Errorf("payload name %q, want %s<16 hex>.tar", p.Payload, want)
	}
	dest := filepath.Join(t.TempDir(), "artifact")
	got, err := r.tr.Download(testCtx(t), "routes/log", dest)
	if err != nil {
		t.Fatal(err)
	}
	if got.Cursor != kvcore.RevisionCursor(5) || got.Backend != snapshot.ArtifactBackend {
		t.Errorf("downloaded %+v", got)
	}
	l, err := snapshot.Import(dest, filepath.Join(t.TempDir(), "fold.snap"), snapshot.Options{})
	if err != nil {
		t.Fatalf("import of the downloaded artifact: %v", err)
	}
	defer l.Close()
	if e, err := l.Get("k2"); err != nil || string(e.Value) != "v2@5" || l.Cursor() != kvcore.RevisionCursor(5) {
		t.Errorf("imported fold: k2 = %q, %v; cursor %v", e.Value, err, l.Cursor())
	}
}

func TestPointerMovesOnlyForward(t *testing.T) {
	r := newRig(t)
	r.upload(t, "k", 7)
	out, _ := r.upload(t, "k", 5)
	if out.Published || out.Remote != kvcore.RevisionCursor(7) {
		t.Fatalf("older upload: %+v, want superseded by 7", out)
	}
	if out, _ := r.upload(t, "k", 7); !out.Published {
		t.Errorf("equal cursor not re-published: %+v", out)
	}
	if out, _ := r.upload(t, "k", 9); !out.Published {
		t.Errorf("newer cursor not published: %+v", out)
	}
	if p, err := r.tr.Manifest(testCtx(t), "k"); err != nil || p.Cursor != kvcore.RevisionCursor(9) {
		t.Errorf("pointer: %+v, %v; want cursor 9", p, err)
	}
}

func TestCorruptPointerIsReplaceable(t *testing.T) {
	r := newRig(t)
	if _, err := r.kv.Put(testCtx(t), r.tr.pointerKey("k"), []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.tr.Manifest(testCtx(t), "k"); !errors.Is(err, snapshot.ErrArtifactInvalid) {
		t.Fatalf("corrupt pointer read: %v, want ErrArtifactInvalid", err)
	}
	if out, _ := r.upload(t, "k", 1); !out.Published {
		t.Fatalf("upload over a corrupt pointer: %+v", out)
	}
}

func TestMissingPointerIsNotPublished(t *testing.T) {
	r := newRig(t)
	_, err := r.tr.Download(testCtx(t), "nothing", filepath.Join(t.TempDir(), "a"))
	if !errors.Is(err, ErrNotPublished) {
		t.Fatalf("download of an unpublished key: %v, want ErrNotPublished", err)
	}
}

func TestDoctoredPointerFindsNoPayload(t *testing.T) {
	r := newRig(t)
	_, p := r.upload(t, "k", 4)
	doctored := bytes.Replace(p.Manifest, []byte(`"created_at_unix": `), []byte(`"created_at_unix": 1`), 1)
	if _, err := r.kv.Put(testCtx(t), r.tr.pointerKey("k"), doctored); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "a")
	_, err := r.tr.Download(testCtx(t), "k", dest)
	if !errors.Is(err, snapshot.ErrArtifactInvalid) || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("download through a doctored pointer: %v, want ErrArtifactInvalid ... not found", err)
	}
	if _, err := os.Lstat(dest); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed download left %s", dest)
	}
}

// putTar replaces the payload p names with a tar of entries.
func (r *rig) putTar(t *testing.T, p *Pointer, entries ...*tar.Header) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mustHeader := func(h *tar.Header, body []byte) {
		h.Size = int64(len(body))
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write(body)
		}
	}
	mustHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "MANIFEST.json", Mode: 0o644}, p.Manifest)
	for _, h := range entries {
		mustHeader(h, []byte("x"))
	}
	tw.Close()
	if err := r.objects.Put(testCtx(t), p.Payload, &buf); err != nil {
		t.Fatal(err)
	}
}

func TestDownloadRefusesEscapingEntries(t *testing.T) {
	for _, h := range []*tar.Header{
		{Typeflag: tar.TypeReg, Name: "../escape"},
		{Typeflag: tar.TypeReg, Name: "data/../../escape"},
		{Typeflag: tar.TypeReg, Name: "/abs/escape"},
		{Typeflag: tar.TypeSymlink, Name: "data/link", Linkname: "/etc"},
		{Typeflag: tar.TypeLink, Name: "data/hard", Linkname: "MANIFEST.json"},
	} {
		t.Run(h.Name, func(t *testing.T) {
			r := newRig(t)
			_, p := r.upload(t, "k", 2)
			r.putTar(t, p, h)
			root := t.TempDir()
			dest := filepath.Join(root, "sub", "artifact")
			os.MkdirAll(filepath.Dir(dest), 0o755)
			_, err := r.tr.Download(testCtx(t), "k", dest)
			if !errors.Is(err, snapshot.ErrArtifactInvalid) {
				t.Fatalf("download of a tar with %q: %v, want ErrArtifactInvalid", h.Name, err)
			}
			ents, _ := os.ReadDir(root)
			if len(ents) != 1 {
				t.Errorf("the refused download left %v in %s", ents, root)
			}
			if ents, _ := os.ReadDir(filepath.Dir(dest)); len(ents) != 0 {
				t.Errorf("the refused download left %v beside the destination", ents)
			}
		})
	}
}

func TestDownloadRefusesAnEmbeddedManifestThatDiffers(t *testing.T) {
	r := newRig(t)
	_, p := r.upload(t, "k", 2)
	r.putTar(t, &Pointer{Payload: p.Payload, Manifest: append(bytes.Clone(p.Manifest), ' ')})
	_, err := r.tr.Download(testCtx(t), "k", filepath.Join(t.TempDir(), "a"))
	if !errors.Is(err, snapshot.ErrArtifactInvalid) || !strings.Contains(err.Error(), "embedded manifest disagrees") {
		t.Fatalf("download: %v", err)
	}
}

func TestPruneKeepsThePointerAndNewer(t *testing.T) {
	r := newRig(t)
	for _, rev := range []uint64{5, 3, 7, 9} {
		r.upload(t, "k", rev)
	}
	if n, err := r.tr.Prune(testCtx(t), "k", time.Hour); err != nil || n != 0 {
		t.Fatalf("prune with an hour of grace: %d, %v; want 0", n, err)
	}
	n, err := r.tr.Prune(testCtx(t), "k", 0)
	if err != nil || n != 3 {
		t.Fatalf("prune with no grace: %d, %v; want 3 (ranks 3, 5, 7)", n, err)
	}
	left, err := r.objects.List(testCtx(t), r.tr.payloadDir("k"))
	if err != nil || len(left) != 1 || !strings.Contains(left[0].Name, "/0000000000000009-") {
		t.Errorf("left after prune: %+v, %v", left, err)
	}
}
