//go:build !unix

package agent

// checkOnlyTrustedWrite is a no-op where files have no Unix owner and mode
// bits: there, keeping the agent's files to its user is the operator's job.
func checkOnlyTrustedWrite(what, path string) error { return nil }

// readableByOthers is a no-op where files have no Unix mode bits.
func readableByOthers(path string) (problem, fix string) { return "", "" }
