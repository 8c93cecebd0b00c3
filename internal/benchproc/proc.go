// Package benchproc runs and measures the child processes of the
// repository's end-to-end benchmarks (internal/e2ebench, internal/fleetbench):
// nats-server and slipagent processes with their logs, their memory from
// /proc, free loopback ports, polling with a deadline, the machine's load,
// flag defaults from the environment, the quoting of values in the agent's
// HCL and the printing of a table.
package benchproc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Proc is a child process of a benchmark: nats-server or a renderer.
type Proc struct {
	Name  string
	Log   string    // its stdout and stderr
	Start time.Time // when it was started
	cmd   *exec.Cmd
	done  chan struct{}
	err   error // Wait's result, once done is closed
}

// Start starts argv with extra environment, output appended to logPath.
func Start(name, logPath string, env []string, argv ...string) (*Proc, error) {
	lf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	p := &Proc{Name: name, Log: logPath, Start: time.Now(), cmd: cmd, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", name, argv[0], err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

// Exited reports an error if the process is no longer running.
func (p *Proc) Exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited (%v); its log: %s", p.Name, p.err, p.Log)
	default:
		return nil
	}
}

// Stop sends SIGTERM and waits for the exit, killing the process after 15 s.
func (p *Proc) Stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// MemKB reads a field such as VmHWM (peak RSS) or VmRSS, in kB, from the
// process's /proc status.
func (p *Proc) MemKB(field string) (int64, error) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(p.cmd.Process.Pid), "status"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s of %s: not in /proc status", field, p.Name)
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Poll calls cond every interval until it returns true or an error, the
// deadline passes or ctx ends.
func Poll(ctx context.Context, what string, deadline, interval time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s: not done after %v", what, deadline)
			}
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Kill kills the process with SIGKILL, as a crash or the OOM killer would,
// and waits for its exit.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}
