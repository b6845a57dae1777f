package testpeer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	// processWaitDelay bounds how long a killed program's output may take
	// to drain once it has exited (exec.Cmd.WaitDelay).
	processWaitDelay = 5 * time.Second
	// processStopGrace is how long Stop waits after SIGINT before it kills.
	processStopGrace = 5 * time.Second
)

// Process is a program started for one test, killed when its deadline
// passes or the test ends, whichever comes first. Its output is kept for
// the test to read while it runs.
type Process struct {
	Cmd    *exec.Cmd
	Stdout *Buffer
	Stderr *Buffer

	name   string
	cancel context.CancelFunc
	done   chan struct{} // closed once Wait returned
	err    error         // Wait's result; read only after done is closed
}

// StartProcess finds the named program (skipping or failing the test as
// Need does when it is missing) and runs it with args. It is killed when
// timeout passes or the test ends; when the test has failed by then, its
// output is logged.
func StartProcess(t testing.TB, timeout time.Duration, name string, args ...string) *Process {
	t.Helper()
	return StartCommand(t, timeout, exec.Command(Need(t, name), args...))
}

// StartCommand is StartProcess for a command that the caller has set up
// (environment, passed sockets). Its Stdout and Stderr must be nil: the
// output goes to the Process's buffers.
func StartCommand(t testing.TB, timeout time.Duration, cmd *exec.Cmd) *Process {
	t.Helper()
	if cmd.Stdout != nil || cmd.Stderr != nil {
		t.Fatal("testpeer: StartCommand: the command's output is already taken")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	cmd.WaitDelay = processWaitDelay
	p := &Process{Cmd: cmd, Stdout: &Buffer{}, Stderr: &Buffer{}, name: filepath.Base(cmd.Args[0]), cancel: cancel, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.Stdout, p.Stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("testpeer: starting %s: %v", p.name, err)
	}
	go func() {
		select {
		case <-ctx.Done():
			_ = cmd.Process.Kill()
		case <-p.done:
		}
	}()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done
		if t.Failed() {
			t.Logf("%s stdout:\n%s\n%s stderr:\n%s", p.name, p.Stdout.String(), p.name, p.Stderr.String())
		}
	})
	return p
}

// Done is closed when the program has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the program has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err returns what exec.Cmd.Wait returned; it must be called only after Done
// is closed.
func (p *Process) Err() error { return p.err }

// Wait waits up to timeout for the program to exit and returns Wait's
// error. When timeout passes first it kills the program and fails the test.
func (p *Process) Wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return p.err
	case <-timer.C:
		p.cancel()
		<-p.done
		t.Fatalf("%s still running after %v; stderr:\n%s", p.name, timeout, p.Stderr.String())
		return nil
	}
}

// ExitCode waits as Wait does and returns the exit status, or -1 when the
// program was killed by a signal.
func (p *Process) ExitCode(t testing.TB, timeout time.Duration) int {
	t.Helper()
	_ = p.Wait(t, timeout)
	return p.Cmd.ProcessState.ExitCode()
}

// Signal sends sig to the program; sending to one that has exited fails the
// test.
func (p *Process) Signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to %s: %v", sig, p.name, err)
	}
}

// Stop asks the program to end with SIGINT, as a user would at a terminal
// (ffmpeg then finishes its output), and kills it when it has not ended
// within a few seconds. It returns once the program has exited.
func (p *Process) Stop() {
	_ = p.Cmd.Process.Signal(syscall.SIGINT)
	timer := time.NewTimer(processStopGrace)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		p.cancel()
		<-p.done
	}
}

// Kill kills the program, if it still runs, and waits for it to exit.
func (p *Process) Kill() {
	p.cancel()
	<-p.done
}

// ErrExited is returned by WaitOutput when the program exits before it
// wrote what was waited for.
var ErrExited = errors.New("testpeer: program exited")

// WaitOutput waits until out (the Process's Stdout or Stderr) holds s at
// least n times. It returns an error wrapping ErrExited when the program
// exits first, or one saying so when timeout passes first; the caller
// decides whether either fails the test.
func (p *Process) WaitOutput(out *Buffer, s string, n int, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if strings.Count(out.String(), s) >= n {
			return nil
		}
		select {
		case <-p.done:
			if strings.Count(out.String(), s) >= n {
				return nil
			}
			return fmt.Errorf("%w (%v) before writing %q %d times", ErrExited, p.err, s, n)
		case <-deadline.C:
			return fmt.Errorf("testpeer: %s did not write %q %d times within %v", p.name, s, n, timeout)
		case <-tick.C:
		}
	}
}
