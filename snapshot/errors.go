package snapshot

import (
	"errors"
	"strconv"

	"github.com/slipstreamkv/slipstream/snapshot/internal/artifact"
)

// Sentinel errors. Errors returned by this package wrap them (with %w) so
// callers branch with errors.Is. File problems also come as a [*FormatError]
// that carries the byte offset.
var (
	// ErrInvalidFormat: the file is not a PGSS v2 snapshot or holds a record
	// no writer produces (bad magic, unsupported version, unknown record type,
	// over-long version or cursor, invalid UTF-8 key, a zero hole in front of
	// data). Load leaves such a file untouched.
	ErrInvalidFormat = errors.New("snapshot: invalid snapshot format")
	// ErrCorrupted: a record in the middle of the file fails its CRC. Load
	// leaves the file untouched.
	ErrCorrupted = errors.New("snapshot: snapshot corrupted (CRC mismatch)")
	// ErrArtifactInvalid: an export artifact failed validation or
	// verification. Recovery is to fetch another artifact.
	ErrArtifactInvalid = artifact.ErrInvalid
	// ErrTooLarge: an update the file format cannot hold in a loadable file
	// (key over 65,535 bytes or value over 16 MiB). Nothing was written.
	ErrTooLarge = errors.New("snapshot: update exceeds format limits")
	// ErrLocked: another [Log], [Writer] or [Repair], in this process or
	// another, has the file open for writing (it holds the lock file beside
	// it). Nothing was read or written. [Inspect] works meanwhile, and
	// [Load] then reads the file without rewriting it.
	ErrLocked = errors.New("snapshot: log is locked")
	// ErrClosed: the fold or writer was closed.
	ErrClosed = errors.New("snapshot: closed")
	// ErrPoisoned: an earlier failure left the log in an unknown state (a
	// write or sync failed part-way); reopen the fold to recover from the file.
	ErrPoisoned = errors.New("snapshot: log poisoned by an earlier write failure; reopen")
)

// Kind says why a file was refused.
type Kind uint8

// Kinds of [FormatError].
const (
	KindInvalidFormat Kind = iota + 1
	KindCorrupted
)

// String returns "invalid_format" or "corrupted" (the names used by
// `slipagent snapshot dump --json`).
func (k Kind) String() string {
	switch k {
	case KindInvalidFormat:
		return "invalid_format"
	case KindCorrupted:
		return "corrupted"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// FormatError is a refused snapshot file: what is wrong and at which byte
// offset (the start of the offending record, or of the header field). It
// unwraps to [ErrInvalidFormat] or [ErrCorrupted].
type FormatError struct {
	Path   string // the file, when known
	Kind   Kind
	Offset int64
	Reason string
}

func (e *FormatError) Error() string {
	s := "snapshot: "
	if e.Path != "" {
		s += e.Path + ": "
	}
	if e.Kind == KindCorrupted {
		s += "corrupted (CRC mismatch)"
	} else {
		s += "invalid format"
	}
	s += " at offset " + strconv.FormatInt(e.Offset, 10)
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

func (e *FormatError) Unwrap() error {
	if e.Kind == KindCorrupted {
		return ErrCorrupted
	}
	return ErrInvalidFormat
}

func invalidf(off int, reason string) *FormatError {
	return &FormatError{Kind: KindInvalidFormat, Offset: int64(off), Reason: reason}
}
