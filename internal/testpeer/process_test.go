package testpeer

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestProcessOutputAndExitCode(t *testing.T) {
	p := StartProcess(t, 30*time.Second, "sh", "-c", "echo out; echo err >&2; exit 3")
	if code := p.ExitCode(t, 10*time.Second); code != 3 {
		t.Fatalf("exit code %d, want 3", code)
	}
	if got := p.Stdout.String(); got != "out\n" {
		t.Errorf("stdout %q", got)
	}
	if got := p.Stderr.String(); got != "err\n" {
		t.Errorf("stderr %q", got)
	}
	if !p.Exited() {
		t.Error("Exited is false after the exit")
	}
}

// TestProcessDeadlineKills starts a program that would run for a minute
// with a deadline of a moment: it is killed when the deadline passes.
func TestProcessDeadlineKills(t *testing.T) {
	p := StartProcess(t, 100*time.Millisecond, "sleep", "60")
	select {
	case <-p.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("still running long after its deadline")
	}
	if err := p.Err(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("Wait returned %v, want the kill", err)
	}
}

// TestProcessStop interrupts a program that ends on SIGINT.
func TestProcessStop(t *testing.T) {
	p := StartProcess(t, time.Minute, "sleep", "60")
	p.Stop()
	if !p.Exited() {
		t.Fatal("running after Stop")
	}
	if err := p.Err(); err == nil || !strings.Contains(err.Error(), "interrupt") {
		t.Fatalf("Wait returned %v, want the interrupt", err)
	}
}

func TestProcessWaitOutput(t *testing.T) {
	p := StartProcess(t, time.Minute, "sh", "-c", "echo ready >&2; echo ready >&2; exec sleep 60")
	if err := p.WaitOutput(p.Stderr, "ready", 2, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitOutput(p.Stderr, "ready", 3, 50*time.Millisecond); err == nil || errors.Is(err, ErrExited) {
		t.Fatalf("WaitOutput for more than was written: %v, want a timeout", err)
	}
	p.Kill()
	if err := p.WaitOutput(p.Stdout, "never", 1, 20*time.Second); !errors.Is(err, ErrExited) {
		t.Fatalf("WaitOutput after the exit: %v, want ErrExited", err)
	}
}
