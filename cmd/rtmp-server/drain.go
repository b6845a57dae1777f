package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// drain asks the running server to drain (SIGUSR1) or, as undrain, to
// take new publishes again (SIGUSR2). The server is found by --pid, or as
// the main process of the systemd unit. It returns the exit status.
func drain(name string, args []string) int {
	fs := flag.NewFlagSet("rtmp-server "+name, flag.ContinueOnError)
	pid := fs.Int("pid", 0, "process id of the running server (default: the main process of --unit)")
	unit := fs.String("unit", "rtmp-server.service", "systemd unit of the running server")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "rtmp-server %s: unexpected argument %q\n", name, fs.Arg(0))
		return 2
	}
	if *pid == 0 {
		var err error
		if *pid, err = unitPID(*unit); err != nil {
			fmt.Fprintf(os.Stderr, "rtmp-server %s: %v; give --pid\n", name, err)
			return 1
		}
	}
	if err := checkServerProcess(*pid); err != nil {
		fmt.Fprintf(os.Stderr, "rtmp-server %s: %v\n", name, err)
		return 1
	}
	sig, what := syscall.SIGUSR1, "draining: new publishes are refused; live streams go on"
	if name == "undrain" {
		sig, what = syscall.SIGUSR2, "drain ended: new publishes are taken"
	}
	if err := syscall.Kill(*pid, sig); err != nil {
		fmt.Fprintf(os.Stderr, "rtmp-server %s: signalling process %d: %v\n", name, *pid, err)
		return 1
	}
	fmt.Printf("rtmp-server (pid %d): %s\n", *pid, what)
	return 0
}

// unitPID asks systemd for the main process of unit.
func unitPID(unit string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "systemctl", "show", "--property=MainPID", "--value", unit).Output()
	if err != nil {
		return 0, fmt.Errorf("asking systemd for the process of %s: %w", unit, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s is not running", unit)
	}
	return n, nil
}

// checkServerProcess makes sure pid is an rtmp-server, so that the signal
// (which ends most other programs) reaches no other process.
func checkServerProcess(pid int) error {
	if pid <= 0 {
		return fmt.Errorf("--pid %d is not a process id", pid)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return fmt.Errorf("process %d: %w", pid, err)
	}
	argv0, _, _ := bytes.Cut(cmdline, []byte{0})
	if filepath.Base(string(argv0)) != "rtmp-server" {
		return fmt.Errorf("process %d is %q, not rtmp-server", pid, filepath.Base(string(argv0)))
	}
	return nil
}
