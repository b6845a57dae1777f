package testpeer

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Listen returns a TCP listener on a loopback port chosen by the kernel,
// closed when the test ends. Tests hand the listener itself to the server
// (or its descriptor to a child process, see Activate) rather than its port
// number: a port that was picked, released and bound again can be taken by
// another process in between.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testpeer: listen: %v", err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// activationShell sets LISTEN_PID to the pid of the shell, which the exec
// keeps for the program: the pid of the child is known only after the fork.
const activationShell = `LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"`

// Activate makes cmd (not started yet) receive lns the way systemd passes
// sockets: as descriptors 3, 4, ... with LISTEN_FDS, LISTEN_FDNAMES (names,
// one per listener) and LISTEN_PID in its environment. The command is run
// through /bin/sh, which sets LISTEN_PID to its own pid before it execs the
// program. The listeners stay open in the test; the descriptors given to
// the child are copies, closed when the test ends.
func Activate(t testing.TB, cmd *exec.Cmd, names []string, lns ...net.Listener) {
	t.Helper()
	if len(names) != len(lns) {
		t.Fatalf("testpeer: Activate: %d names for %d listeners", len(names), len(lns))
	}
	if cmd.Process != nil {
		t.Fatal("testpeer: Activate: the command has already started")
	}
	if len(cmd.ExtraFiles) != 0 {
		t.Fatal("testpeer: Activate: the command already has extra files; the sockets must be descriptors 3 onwards")
	}
	for _, n := range names {
		if n == "" || strings.ContainsAny(n, ":\x00") || len(n) > 255 {
			t.Fatalf("testpeer: Activate: socket name %q: want 1 to 255 characters without ':'", n)
		}
	}
	for _, ln := range lns {
		f, err := listenerFile(ln)
		if err != nil {
			t.Fatalf("testpeer: Activate: %v", err)
		}
		t.Cleanup(func() { _ = f.Close() })
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
	}
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, "LISTEN_FDS="+strconv.Itoa(len(lns)), "LISTEN_FDNAMES="+strings.Join(names, ":"))
	cmd.Args = append([]string{"/bin/sh", "-c", activationShell, cmd.Path}, cmd.Args[1:]...)
	cmd.Path = "/bin/sh"
}

// listenerFile returns a copy of the listener's descriptor.
func listenerFile(ln net.Listener) (*os.File, error) {
	type filer interface{ File() (*os.File, error) }
	fl, ok := ln.(filer)
	if !ok {
		return nil, fmt.Errorf("a %T has no descriptor to pass", ln)
	}
	return fl.File()
}

// RefusingAddr returns a loopback address that refuses connections until
// the test ends: a socket is bound to the port but does not listen, so no
// other process can take the port meanwhile (a port that was listened on
// and closed could be).
func RefusingAddr(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("testpeer: socket: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("testpeer: bind: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("testpeer: getsockname: %v", err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
}
