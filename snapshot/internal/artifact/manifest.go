// Package artifact implements the export artifact shared by every fold
// backend (upstream spec §9.1–§9.5): a directory holding the backend's files
// under data/ and a MANIFEST.json, written last, that lists each file with
// its size and BLAKE3-256 digest.
//
// Export assembles the artifact in a hidden directory beside the destination
// ([NewStage], [Stage.Seal]) and renames it into place, so an artifact that
// exists is complete and fsynced. Import ([VerifyAndStage]) checks the
// manifest, refuses undeclared, missing, resized, altered and non-regular
// files, and copies the payload into a staging directory the backend then
// verifies and renames into place. Nothing is created at the destination
// when a check fails.
//
// A staging directory is flocked while in use; the staging directories a
// crash left behind (unlocked) are removed by the next export or import in
// the same parent directory.
package artifact

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// ErrInvalid is wrapped by every artifact validation or verification failure.
var ErrInvalid = errors.New("snapshot: invalid snapshot artifact")

// Names of the artifact layout.
const (
	SchemaVersion = 1
	ManifestName  = "MANIFEST.json"
	DataDir       = "data"
)

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// File is one payload file of an artifact.
type File struct {
	Path   string `json:"path"`   // "/"-separated, starts with "data/"
	Size   int64  `json:"size"`   // bytes
	Blake3 string `json:"blake3"` // lowercase hex BLAKE3-256
}

// Manifest describes an artifact. Field order and names match the Rust
// crate's MANIFEST.json.
type Manifest struct {
	SchemaVersion  int    `json:"schema_version"`
	Backend        string `json:"backend"`
	BackendVersion string `json:"backend_version"`
	CursorHex      string `json:"cursor_hex"`
	CreatedAtUnix  int64  `json:"created_at_unix"`
	Files          []File `json:"files"`
}

// Encode renders the manifest as the Rust crate does: pretty JSON with a
// two-space indent and no trailing newline.
func (m *Manifest) Encode() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Cursor decodes cursor_hex.
func (m *Manifest) Cursor() (kvcore.Cursor, error) {
	b, err := hex.DecodeString(m.CursorHex)
	if err != nil {
		return kvcore.Cursor{}, invalidf("malformed cursor_hex %q: %v", m.CursorHex, err)
	}
	c, err := kvcore.CursorFromBytes(b)
	if err != nil {
		return kvcore.Cursor{}, invalidf("cursor_hex %q exceeds version token capacity", m.CursorHex)
	}
	return c, nil
}

// checkPath accepts "data/a/b" style paths with only normal components.
func checkPath(p string) error {
	rest, ok := strings.CutPrefix(p, DataDir+"/")
	if !ok || rest == "" || strings.Contains(p, `\`) {
		return invalidf("manifest path %q is not a file under %s/", p, DataDir)
	}
	for _, c := range strings.Split(rest, "/") {
		if c == "" || c == "." || c == ".." {
			return invalidf("manifest path %q has a non-normal component", p)
		}
	}
	return nil
}

// sortFiles orders files by path component, as the Rust crate lists them.
func sortFiles(fs []File) {
	slices.SortFunc(fs, func(a, b File) int {
		return slices.Compare(strings.Split(a.Path, "/"), strings.Split(b.Path, "/"))
	})
}
