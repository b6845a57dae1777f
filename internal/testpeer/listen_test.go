package testpeer

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// activatedEnv makes the test binary act as a socket-activated child: it
// checks LISTEN_PID, then on each passed socket accepts one connection and
// writes the socket's name to it.
const activatedEnv = "TESTPEER_ACTIVATED_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(activatedEnv) == "1" {
		if err := activatedChild(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func activatedChild() error {
	if pid := os.Getenv("LISTEN_PID"); pid != strconv.Itoa(os.Getpid()) {
		return fmt.Errorf("LISTEN_PID=%q, my pid is %d", pid, os.Getpid())
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil {
		return fmt.Errorf("LISTEN_FDS: %v", err)
	}
	names := strings.Split(os.Getenv("LISTEN_FDNAMES"), ":")
	if len(names) != n {
		return fmt.Errorf("%d names for %d sockets", len(names), n)
	}
	for i := range n {
		ln, err := net.FileListener(os.NewFile(uintptr(3+i), names[i]))
		if err != nil {
			return fmt.Errorf("socket %d: %v", 3+i, err)
		}
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(c, names[i])
		c.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// TestActivatePassesListeners hands two bound listeners to a child process
// as systemd does: the child sees its own pid in LISTEN_PID and answers on
// each socket with the name it was given. No port is released on the way.
func TestActivatePassesListeners(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	a, b := Listen(t), Listen(t)
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), activatedEnv+"=1")
	Activate(t, cmd, []string{"rtmp", "rtmps"}, a, b)
	p := StartCommand(t, 30*time.Second, cmd)
	// In the order of the fds: the child accepts on each in turn.
	for _, s := range []struct {
		ln   net.Listener
		want string
	}{{a, "rtmp"}, {b, "rtmps"}} {
		ln, want := s.ln, s.want
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil {
			t.Fatalf("%s: %v; child stderr:\n%s", want, err, p.Stderr.String())
		}
		if got := strings.TrimSpace(line); got != want {
			t.Errorf("socket answered %q, want %q", got, want)
		}
	}
	if code := p.ExitCode(t, 10*time.Second); code != 0 {
		t.Fatalf("child exit %d:\n%s", code, p.Stderr.String())
	}
}

// TestRefusingAddr checks that the address refuses connections, and that
// its port cannot be taken while the test runs.
func TestRefusingAddr(t *testing.T) {
	addr := RefusingAddr(t)
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err == nil {
		c.Close()
		t.Fatal("connected to a refusing address")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial error %v, want connection refused", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		ln.Close()
		t.Fatal("another listener took the port")
	}
}
