package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/slipstreamkv/slipstream/internal/filelock"
)

// devFile is where "slipagent dev" records the addresses it serves on, in
// its -dir: dev-out/dev.json, found by the README's commands run from the
// repository root. The ports dev picks can differ from the defaults (4222,
// 9464) when those are taken.
const devFile = "dev.json"

// defaultDevDir is dev's -dir default.
const defaultDevDir = "dev-out"

// devAddrs is the content of the dev file.
type devAddrs struct {
	PID  int    `json:"pid"`
	NATS string `json:"nats_url"`
	HTTP string `json:"http,omitempty"` // empty with -nats-only
}

// writeDevFile records dev's addresses in dir; the returned func removes
// the record.
func writeDevFile(dir string, addrs devAddrs) (func(), error) {
	b, err := json.MarshalIndent(addrs, "", "  ")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, devFile)
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	return func() { os.Remove(path) }, nil
}

// devLock names the file in dev's -dir whose flock(2) a dev holds while
// it runs: a second dev on the same -dir would start a NATS server on the
// first one's JetStream store, rewrite its agent.hcl and, when it stops,
// remove its dev.json.
const devLock = "dev.lock"

// lockDevDir takes dev's lock on dir, or fails naming the dev that holds
// it. The lock is held until the returned file is closed.
func lockDevDir(dir string) (*os.File, error) {
	f, err := filelock.Create(filepath.Join(dir, devLock), 0o644)
	if !errors.Is(err, filelock.ErrHeld) {
		return f, err
	}
	holder := "another slipagent dev"
	var d devAddrs
	if b, err := os.ReadFile(filepath.Join(dir, devFile)); err == nil && json.Unmarshal(b, &d) == nil && d.PID > 0 {
		holder += fmt.Sprintf(" (pid %d, NATS at %s)", d.PID, d.NATS)
	}
	return nil, fmt.Errorf("%s is in use by %s: stop it, or give this one a -dir of its own", dir, holder)
}

// runningDev returns the addresses of a "slipagent dev" whose record is in
// ./dev-out and whose process is alive.
func runningDev() (devAddrs, bool) {
	var d devAddrs
	b, err := os.ReadFile(filepath.Join(defaultDevDir, devFile))
	if err != nil || json.Unmarshal(b, &d) != nil || d.PID <= 0 {
		return devAddrs{}, false
	}
	if !alive(d.PID) {
		return devAddrs{}, false // a record left by a dev that was killed
	}
	return d, true
}

// alive reports whether process pid runs. A zombie does not: a dev killed
// (SIGKILL) by a parent that has not reaped it yet.
func alive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err == nil {
		err = p.Signal(syscall.Signal(0))
	}
	if err != nil && !errors.Is(err, os.ErrPermission) {
		return false
	}
	// Linux: the state follows the command name, which is in parentheses
	// and may hold any byte.
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if i := bytes.LastIndexByte(stat, ')'); err == nil && i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	return true
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
