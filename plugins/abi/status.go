package abi

import "strconv"

// Status is the result of a host function: zero or positive for success,
// negative for an error. Functions returning i64 return either a length
// (>= 0) or a negative Status. Status implements error so callers can wrap
// it and match it with errors.Is.
type Status int32

// Status codes.
const (
	// OK: the call succeeded.
	OK Status = 0
	// Unchanged: stage_write found the target already holding exactly this
	// content and mode (nothing staged); stage_remove found no file to remove.
	Unchanged Status = 1

	// ErrMemory: a pointer/length pair lies outside the guest's memory.
	ErrMemory Status = -1
	// ErrInvalid: a malformed argument (a path breaking the path rules, a
	// mode with bits outside 0o777, a removal of a directory, a path staged
	// both as a file and as a directory in one call).
	ErrInvalid Status = -2
	// ErrNotFound: no such key (view_get), config key (config_get) or
	// directory (output_list).
	ErrNotFound Status = -3
	// ErrDenied: an output or hook not declared for this plugin, or a path
	// that would leave its output directory (e.g. through a symlink).
	ErrDenied Status = -4
	// ErrLimit: a per-call cap on file size, file count or total bytes.
	ErrLimit Status = -5
	// ErrState: the function is not available now (for example staging
	// during _initialize).
	ErrState Status = -6
	// ErrIO: the host failed (view or file system error); not the guest's fault.
	ErrIO Status = -7
)

// IsError reports whether s is an error status (negative).
func (s Status) IsError() bool { return s < 0 }

// Error describes the status; it makes Status usable as an error value.
func (s Status) Error() string {
	switch s {
	case OK:
		return "abi: ok"
	case Unchanged:
		return "abi: unchanged"
	case ErrMemory:
		return "abi: pointer or length outside guest memory"
	case ErrInvalid:
		return "abi: invalid argument"
	case ErrNotFound:
		return "abi: not found"
	case ErrDenied:
		return "abi: denied"
	case ErrLimit:
		return "abi: limit exceeded"
	case ErrState:
		return "abi: not allowed in this state"
	case ErrIO:
		return "abi: host I/O error"
	}
	return "abi: status " + strconv.Itoa(int(s))
}

// Guest results of ExportApply and ExportRender. Any value other than
// GuestOK is a failure; the SDK uses GuestFailed for returned errors and
// GuestPanicked for recovered panics.
const (
	GuestOK       int32 = 0
	GuestFailed   int32 = 1
	GuestPanicked int32 = 2
)

// Log levels for [FuncLog]; the values are those of log/slog. Other values
// are accepted and passed through.
const (
	LevelDebug int32 = -4
	LevelInfo  int32 = 0
	LevelWarn  int32 = 4
	LevelError int32 = 8
)
