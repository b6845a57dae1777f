package testpeer

import (
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
