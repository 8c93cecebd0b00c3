package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/plugintest"
)

// childArgsEnv, set in a test binary's environment, makes it run as
// slipagent with these arguments (separated by \x1f) instead of the tests:
// tests start real slipagent processes without building the binary.
const childArgsEnv = "SLIPAGENT_TEST_CHILD_ARGS"

// runChild is main for a child process.
func runChild(args string) int {
	var argv []string // none, not one empty one
	if args != "" {
		argv = strings.Split(args, "\x1f")
	}
	return runWithSignals(argv, os.Stdout, os.Stderr)
}

// runCmd runs the slipagent binary with args, as a user would, and returns
// its exit code and output. (The binary is built without the race
// detector: under -race, each run of this test binary as slipagent loaded
// its plugins several times slower.)
func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(plugintest.Binary(t), args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.Exited():
		code = exit.ExitCode()
	default:
		t.Fatalf("slipagent %s: %v", strings.Join(args, " "), err)
	}
	return code, out.String(), errOut.String()
}

// slipagentProcess is a slipagent process a test started.
type slipagentProcess struct {
	cmd  *exec.Cmd
	log  string // its stdout and stderr
	done chan struct{}
}

// startSlipagent starts "slipagent args..." as a process of its own, its
// output in a file of dir; t.Cleanup stops it.
func startSlipagent(t *testing.T, dir string, args ...string) *slipagentProcess {
	t.Helper()
	return startSlipagentUnder(t, nil, dir, args...)
}

// startSlipagentUnder is startSlipagent under a command prefix, such as
// netlab's Host.Wrap to run it on another host.
func startSlipagentUnder(t *testing.T, wrap []string, dir string, args ...string) *slipagentProcess {
	t.Helper()
	argv := append(slices.Clone(wrap), os.Args[0])
	p := &slipagentProcess{cmd: exec.Command(argv[0], argv[1:]...), log: filepath.Join(dir, "slipagent.log"), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), childArgsEnv+"="+strings.Join(args, "\x1f"))
	out, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		out.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t, syscall.SIGTERM) })
	return p
}

// stop sends sig and waits for the process to exit (SIGKILL after 30s).
func (p *slipagentProcess) stop(t *testing.T, sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Errorf("slipagent (pid %d) did not exit 30s after %v; killing it", p.cmd.Process.Pid, sig)
		p.cmd.Process.Kill()
		<-p.done
	}
}

// output is what the process printed so far.
func (p *slipagentProcess) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}
