package kvcore

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
)

// MaxVersionLen is the largest opaque version a backend may use, in bytes.
// NATS uses 8 (a big-endian stream sequence); FoundationDB-style versionstamps use 10.
const MaxVersionLen = 10

// Version is an opaque, per-key version token of at most [MaxVersionLen] bytes.
//
// The zero value is the unknown version. NATS versions are the key's revision
// (its JetStream stream sequence) as 8 big-endian bytes, see [RevisionVersion].
// Version is comparable with == and safe to copy; it never allocates.
type Version struct {
	n uint8
	b [MaxVersionLen]byte
}

// RevisionVersion returns the 8-byte big-endian version of a NATS revision.
func RevisionVersion(rev uint64) Version {
	var v Version
	v.n = 8
	binary.BigEndian.PutUint64(v.b[:8], rev)
	return v
}

// VersionFromBytes returns the version holding a copy of b.
// An empty b gives the unknown version. More than [MaxVersionLen] bytes is
// refused with [ErrVersionTooLong], never truncated.
func VersionFromBytes(b []byte) (Version, error) {
	var v Version
	if len(b) > MaxVersionLen {
		return v, fmt.Errorf("%w: %d bytes", ErrVersionTooLong, len(b))
	}
	v.n = uint8(len(b))
	copy(v.b[:], b)
	return v, nil
}

// Bytes returns a copy of the version's raw bytes (nil for the unknown version).
func (v Version) Bytes() []byte {
	if v.n == 0 {
		return nil
	}
	return append([]byte(nil), v.b[:v.n]...)
}

// AppendBytes appends the version's raw bytes to dst.
func (v Version) AppendBytes(dst []byte) []byte { return append(dst, v.b[:v.n]...) }

// Len is the number of raw bytes, 0 for the unknown version.
func (v Version) Len() int { return int(v.n) }

// IsUnknown reports whether v is the unknown (empty) version.
func (v Version) IsUnknown() bool { return v.n == 0 }

// Revision returns the version as a NATS revision. ok is false unless the
// version is exactly 8 bytes long.
func (v Version) Revision() (rev uint64, ok bool) {
	if v.n != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(v.b[:8]), true
}

// Hex is the lowercase hex of the raw bytes ("" for the unknown version).
// It is the form used in manifests and `slipagent snapshot dump --json`.
func (v Version) Hex() string { return hex.EncodeToString(v.b[:v.n]) }

// String renders "rev N" for an 8-byte version, "unknown" for the empty one and
// "0x…" hex otherwise.
func (v Version) String() string {
	if v.n == 0 {
		return "unknown"
	}
	if rev, ok := v.Revision(); ok {
		return "rev " + strconv.FormatUint(rev, 10)
	}
	return "0x" + v.Hex()
}

// Cursor is an opaque resume position in a bucket's change stream: every update
// up to and including the cursor's version has been seen.
//
// The zero value is the none cursor ("no position": start with a full state
// sync). A cursor built from revision 0 is not none, but the NATS backend treats
// revision 0 as no position as well, because NATS revisions start at 1.
type Cursor struct {
	v Version
}

// CursorAt returns the cursor positioned at version v (none if v is unknown).
func CursorAt(v Version) Cursor { return Cursor{v: v} }

// RevisionCursor returns the cursor positioned at a NATS revision.
func RevisionCursor(rev uint64) Cursor { return Cursor{v: RevisionVersion(rev)} }

// CursorFromBytes returns the cursor whose version holds b; see [VersionFromBytes].
func CursorFromBytes(b []byte) (Cursor, error) {
	v, err := VersionFromBytes(b)
	return Cursor{v: v}, err
}

// IsNone reports whether c is the none cursor.
func (c Cursor) IsNone() bool { return c.v.IsUnknown() }

// Version returns the version the cursor is positioned at.
func (c Cursor) Version() Version { return c.v }

// Revision returns the cursor as a NATS revision; see [Version.Revision].
func (c Cursor) Revision() (uint64, bool) { return c.v.Revision() }

// Bytes returns a copy of the cursor's raw bytes (nil for none).
func (c Cursor) Bytes() []byte { return c.v.Bytes() }

// Hex is the lowercase hex of the raw bytes ("" for none).
func (c Cursor) Hex() string { return c.v.Hex() }

// MarshalText encodes the cursor as [Cursor.Hex], so that a cursor persists
// in JSON or HCL as a string ("" for none).
func (c Cursor) MarshalText() ([]byte, error) { return []byte(c.Hex()), nil }

// UnmarshalText decodes what MarshalText encoded.
func (c *Cursor) UnmarshalText(text []byte) error {
	b, err := hex.DecodeString(string(text))
	if err != nil {
		return fmt.Errorf("kvcore: cursor %q: %w", text, err)
	}
	v, err := VersionFromBytes(b)
	if err != nil {
		return fmt.Errorf("kvcore: cursor %q: %w", text, err)
	}
	c.v = v
	return nil
}

// String renders the cursor like [Version.String], with "none" for the none cursor.
func (c Cursor) String() string {
	if c.IsNone() {
		return "none"
	}
	return c.v.String()
}
