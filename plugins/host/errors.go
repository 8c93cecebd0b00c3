package host

import (
	"errors"
	"fmt"
)

// Sentinel errors; match them with errors.Is. Messages start with "host:".
var (
	// ErrInvalidModule: the bytes are not a WebAssembly module wazero can
	// compile (including a declared minimum memory above the plugin's limit).
	ErrInvalidModule = errors.New("host: invalid WebAssembly module")
	// ErrChecksum: the module's sha256 differs from the configured pin.
	ErrChecksum = errors.New("host: module sha256 does not match the pin")
	// ErrABI: the module does not speak ABI version 1: a missing or
	// mistyped export, an unknown import, or another declared ABI version.
	ErrABI = errors.New("host: plugin ABI mismatch")
	// ErrTimeout: a call ran past its time limit ([PluginConfig.Timeout]), whatever
	// it returned: nothing it staged is committed; the instance was recycled.
	ErrTimeout = errors.New("host: plugin call timed out")
	// ErrTrap: the guest trapped or exited (a crash, out of memory, stack
	// exhaustion, a Go panic it did not recover); the instance was recycled.
	ErrTrap = errors.New("host: plugin trapped")
	// ErrPluginFailed: the guest returned a failure status, or its
	// initializer reported an error and exited (it refused its
	// configuration); the message it reported is part of the error.
	ErrPluginFailed = errors.New("host: plugin reported failure")
	// ErrDenied: the plugin asked for something outside its confinement: an
	// undeclared output or hook, or a path that is absolute, contains "..",
	// breaks the path rules or leaves the output directory through a symlink.
	ErrDenied = errors.New("host: plugin request denied")
	// ErrLimit: the plugin exceeded a per-call cap of [Limits].
	ErrLimit = errors.New("host: plugin exceeded an output limit")
	// ErrIO: the host failed to serve the plugin (view or file system error).
	ErrIO = errors.New("host: I/O error serving plugin")
	// ErrClosed: the plugin, instance or engine was closed.
	ErrClosed = errors.New("host: closed")
	// ErrDone: Commit or Discard was called on a result that was already
	// committed or discarded.
	ErrDone = errors.New("host: result already committed or discarded")
)

// CallError is the error of a failed plugin call. It wraps one of the
// sentinels above (Err), and carries what the plugin or its stderr said.
type CallError struct {
	Plugin string // the plugin's name
	Watch  string // the instance's watch; empty for the check Load runs
	Call   string // "apply", "render" or "instantiate"
	// Message is the plugin's report_error message, or for a trap the last
	// lines the guest wrote to stderr (a Go panic, for instance). May be empty.
	Message string
	// Recycled is true when the instance was discarded because of this error;
	// the next call starts a fresh one.
	Recycled bool
	Err      error
}

func (e *CallError) Error() string {
	s := fmt.Sprintf("plugin %q", e.Plugin)
	if e.Watch != "" {
		s += fmt.Sprintf(" (watch %q)", e.Watch)
	}
	s += fmt.Sprintf(": %s: %v", e.Call, e.Err)
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Recycled {
		s += " (instance recycled)"
	}
	return s
}

func (e *CallError) Unwrap() error { return e.Err }

// UndeclaredError is the [ErrDenied] error of a call that named an output
// or a hook its watch does not declare: a mismatch between the plugin's
// configuration and the watch's, which callers can point out as such.
type UndeclaredError struct {
	Kind string // "output" or "hook"
	Name string // as the plugin gave it, quoted (abi.Quote)
}

func (e *UndeclaredError) Error() string {
	return fmt.Sprintf("%v: %s %s is not declared for this watch", ErrDenied, e.Kind, e.Name)
}

func (e *UndeclaredError) Unwrap() error { return ErrDenied }
