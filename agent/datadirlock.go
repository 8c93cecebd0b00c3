package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/slipstreamkv/slipstream/internal/filelock"
)

// dataDirLock names the file in data_dir whose flock(2) an agent holds
// while it runs. It is never removed; it holds the pid of the agent that
// last held it, for the message of one that finds it taken.
const dataDirLock = "agent.lock"

// ErrDataDirInUse: another agent (run, once or dev) runs on the same
// data_dir.
var ErrDataDirInUse = errors.New("in use by another agent")

// ErrDataDirLost: the data_dir of a running agent was removed or replaced
// (its lock file is gone, or is another file): the folds, records and
// journals the agent holds open are no longer on the disk, and another
// agent could take the directory. Run stops with it, so that the service
// manager starts the agent again on the directory as it is now.
var ErrDataDirLost = errors.New("the data_dir was removed or replaced under the running agent")

// dataDirCheckEvery is how often a running agent checks that its data_dir
// lock file is still the one it holds.
const dataDirCheckEvery = 10 * time.Second

// openDataDir checks cfg's data_dir, creates it if missing and takes the
// agent's lock on it (lockDataDir).
func openDataDir(cfg *Config) (*os.File, error) {
	if err := checkDataDir(cfg); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, dataDirError(cfg, err)
	}
	return lockDataDir(cfg)
}

// lockDataDir takes the agent's lock on cfg's data_dir, which Run holds
// until it returns: two agents on one data_dir would take turns failing on
// each other's folds while both reported under one host name to the fleet
// (a "slipagent once" started beside "slipagent run"). The second fails
// at once instead, before it reports or serves anything.
func lockDataDir(cfg *Config) (*os.File, error) {
	path := filepath.Join(cfg.DataDir, dataDirLock)
	f, err := filelock.Create(path, 0o600)
	if errors.Is(err, filelock.ErrHeld) {
		holder := "its lock " + path + " is held"
		if b, _ := os.ReadFile(path); len(b) > 0 {
			if pid, err := strconv.Atoi(string(bytes.TrimSpace(b))); err == nil {
				holder = "pid " + strconv.Itoa(pid) + " holds " + path
			}
		}
		err = fmt.Errorf("%w (%s); stop it, or give this agent a data_dir of its own", ErrDataDirInUse, holder)
	}
	if err != nil {
		return nil, dataDirError(cfg, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// watchDataDir checks every interval, until ctx ends, that the lock file at
// path is still lock, and cancels ctx with an error wrapping
// ErrDataDirLost when it is not.
func watchDataDir(ctx context.Context, cancel context.CancelCauseFunc, lock *os.File, path string, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		held, err := lock.Stat()
		if err != nil {
			continue // cannot tell: the next tick asks again
		}
		now, err := os.Stat(path)
		switch {
		case errors.Is(err, os.ErrNotExist):
			cancel(fmt.Errorf("agent: %w: %s is gone", ErrDataDirLost, path))
			return
		case err == nil && !os.SameFile(held, now):
			cancel(fmt.Errorf("agent: %w: %s is another file now", ErrDataDirLost, path))
			return
		}
	}
}
