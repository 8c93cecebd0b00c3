package abi

// Message limits. Longer messages are truncated, not refused.
const (
	// MaxLogLen is the longest log message (or guest stdout/stderr line) the
	// host keeps, in bytes.
	MaxLogLen = 4096
	// MaxErrorLen is the longest message report_error keeps, in bytes.
	MaxErrorLen = 4096
)

// ModeMask holds the permission bits a plugin may set with stage_write;
// setuid, setgid and sticky bits are refused.
const ModeMask = 0o777
