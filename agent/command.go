package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

// outputTail is how much of a command's combined output is kept for its error
// and logs.
const outputTail = 4 << 10

// CommandError is a hook or check command that failed.
type CommandError struct {
	Argv     []string
	ExitCode int    // -1 when it did not exit normally (timeout, signal, not started)
	Output   string // the tail of its combined stdout and stderr
	Err      error
}

func (e *CommandError) Error() string {
	msg := fmt.Sprintf("command %q: %v", strings.Join(e.Argv, " "), e.Err)
	if out := strings.TrimSpace(e.Output); out != "" {
		msg += ": " + lastLine(out)
	}
	return msg
}

func (e *CommandError) Unwrap() error { return e.Err }

// errCommandTimeout is wrapped by a CommandError when the command ran too long.
var errCommandTimeout = errors.New("timed out")

// outputGrace is how long a command's output is still read after it
// exited: a background child it started (a daemon, `service x restart`)
// can hold its stdout open for good.
const outputGrace = time.Second

// process is how a hook or check command starts: its whole environment,
// and the user it runs as (nil: the agent's).
type process struct {
	env   []string
	runAs *RunAs
}

// hookProcess is the process of one of h's commands: its environment
// (see HookEnvConf) with the agent's variables for this run, extra.
func hookProcess(h *HookConf, extra []string) process {
	return process{env: h.Env.environ(os.Environ(), extra), runAs: h.RunAs}
}

// credential is the SysProcAttr credential of r: nil for none or for the
// agent's own ids and groups, so an agent without CAP_SETUID and
// CAP_SETGID can name itself.
func (r *RunAs) credential() *syscall.Credential {
	if r == nil || r.UID == uint32(os.Getuid()) && r.GID == uint32(os.Getgid()) && (r.Groups == nil || sameGroups(r.Groups)) {
		return nil
	}
	return &syscall.Credential{Uid: r.UID, Gid: r.GID, Groups: r.Groups, NoSetGroups: r.Groups == nil}
}

// runCommand runs argv (no shell) as p says (its environment, its user),
// stdin from /dev/null (exec's nil Stdin), and waits for it. After timeout, or when ctx ends
// before it exits, the command's whole process group is killed, so a hook
// that hangs cannot outlive its budget. A command that exited is judged by
// its exit status alone: background children it left running (still holding
// its output) are left alone, and its output is read only for outputGrace
// more. Output is logged line by line and its tail kept for the error.
func runCommand(ctx context.Context, log *slog.Logger, argv []string, timeout time.Duration, p process) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append([]string{}, p.env...) // never nil: nil would pass the agent's environment
	cred := p.runAs.credential()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = outputGrace
	var out tailBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Start()
	if err == nil {
		untrack := trackGroup(cmd.Process.Pid)
		err = cmd.Wait()
		untrack()
	}
	text := out.String()
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		if line != "" {
			log.Info("command output", "argv0", argv[0], "line", line)
		}
	}
	if errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState != nil && cmd.ProcessState.Success() {
		// Run returns ErrWaitDelay only for a command that exited 0 (an exit
		// status, a signal or a kill wins over it).
		log.Warn("command succeeded but left a background process holding its output; output capture was cut short",
			"argv0", argv[0], "grace", outputGrace)
		return nil
	}
	if err == nil {
		return nil
	}
	ce := &CommandError{Argv: argv, ExitCode: -1, Output: text, Err: switchUserError(cred, err)}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Exited() {
		ce.ExitCode = ee.ExitCode()
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		ce.Err = fmt.Errorf("%w after %v", errCommandTimeout, timeout)
	}
	return ce
}

// switchUserError explains err, a command that could not start as cred's
// user and group with EPERM: the agent lacks CAP_SETUID or CAP_SETGID.
func switchUserError(cred *syscall.Credential, err error) error {
	if cred == nil || !errors.Is(err, syscall.EPERM) {
		return err
	}
	return fmt.Errorf("%w: running it as uid %d gid %d (the hook's user and group) needs CAP_SETUID and CAP_SETGID, which the agent lacks; "+
		"with the shipped unit, copy /usr/share/slipagent/slipagent.service.d/hooks-restart-services.conf (contrib/ in the source) "+
		"into /etc/systemd/system/slipagent.service.d/ and run systemctl daemon-reload", err, cred.Uid, cred.Gid)
}

// tailBuffer keeps the last outputTail bytes written to it.
type tailBuffer struct{ b bytes.Buffer }

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) > outputTail {
		p = p[len(p)-outputTail:]
	}
	if over := t.b.Len() + len(p) - outputTail; over > 0 {
		t.b.Next(over)
	}
	t.b.Write(p)
	return n, nil
}

func (t *tailBuffer) String() string { return t.b.String() }

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// sameGroups reports whether groups are the agent's supplementary groups.
func sameGroups(groups []uint32) bool {
	own, err := os.Getgroups()
	if err != nil || len(own) != len(groups) {
		return false
	}
	for _, g := range own {
		if !slices.Contains(groups, uint32(g)) {
			return false
		}
	}
	return true
}
