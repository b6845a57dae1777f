package sd

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

func TestListenersNotActivated(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
	}{
		{name: "no variables", env: map[string]string{}},
		{name: "another process", env: map[string]string{
			"LISTEN_PID": strconv.Itoa(os.Getpid() + 1), "LISTEN_FDS": "1", "LISTEN_FDNAMES": "rtmp",
		}},
		{name: "zero descriptors", env: map[string]string{
			"LISTEN_PID": strconv.Itoa(os.Getpid()), "LISTEN_FDS": "0",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, key := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
				t.Setenv(key, "")
				os.Unsetenv(key)
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			got, err := Listeners("rtmp", "rtmps")
			if err != nil {
				t.Fatalf("Listeners: %v", err)
			}
			if got == nil || len(got) != 0 {
				t.Fatalf("Listeners = %v, want an empty map", got)
			}
			for _, key := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
				if _, ok := os.LookupEnv(key); ok {
					t.Errorf("%s still set", key)
				}
			}
		})
	}
}

// TestListenersSocketActivated runs the test binary under the real
// systemd-socket-activate and checks what the child makes of the sockets.
func TestListenersSocketActivated(t *testing.T) {
	tool := testpeer.Need(t, "systemd-socket-activate")
	tests := []struct {
		name     string
		network  string // "tcp" or "udp"
		fdnames  []string
		wantOut  string   // a line the child prints
		wantSent []string // what the child writes to each connection, in order
	}{
		{
			name: "one socket", network: "tcp", fdnames: []string{"rtmp"},
			wantOut: "listeners: rtmp", wantSent: []string{"rtmp"},
		},
		{
			name: "two sockets", network: "tcp", fdnames: []string{"rtmp", "rtmps"},
			wantOut: "listeners: rtmp,rtmps", wantSent: []string{"rtmp", "rtmps"},
		},
		{
			name: "unknown name", network: "tcp", fdnames: []string{"bogus"},
			wantOut: fmt.Sprintf("error: %v: %q (fd 3); want one of rtmp, rtmps", ErrUnknownSocket, "bogus"),
		},
		{
			name: "duplicate name", network: "tcp", fdnames: []string{"rtmp", "rtmp"},
			wantOut: fmt.Sprintf("error: %v: %q", ErrDuplicateSocket, "rtmp"),
		},
		{
			name: "datagram socket", network: "udp", fdnames: []string{"rtmp"},
			wantOut: fmt.Sprintf("error: %v: %q (fd 3): it is a datagram socket", ErrNotStream, "rtmp"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			child := startActivated(t, tool, tt.network, tt.fdnames)

			// The first connection (or datagram) makes the tool exec the child.
			for i, want := range tt.wantSent {
				got, err := readName(child.addrs[i])
				if err != nil {
					t.Fatalf("socket %d: %v", i, err)
				}
				if got != want {
					t.Errorf("socket %d served %q, want %q", i, got, want)
				}
			}
			if len(tt.wantSent) == 0 {
				if err := poke(tt.network, child.addrs[0]); err != nil {
					t.Fatal(err)
				}
			}

			stdout, err := child.wait(t)
			if err != nil {
				t.Fatalf("child: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, child.Stderr.String())
			}
			if !containsLine(stdout, tt.wantOut) {
				t.Errorf("child printed:\n%s\nwant the line %q", stdout, tt.wantOut)
			}
		})
	}
}

// activatedChild is a systemd-socket-activate process listening on addrs,
// which execs the test binary as a helper on the first connection.
type activatedChild struct {
	*testpeer.Process
	addrs []string
}

// activatedLimit bounds the life of the tool and its child: each of the
// child's waits is bounded by helperDeadline.
const activatedLimit = 4 * helperDeadline

// startActivated starts systemd-socket-activate on free loopback ports, one
// per name in fdnames, and returns once it listens on all of them. The tool
// binds the ports itself and takes no port 0, so the ports are chosen here
// and released for it: one taken in between makes it try again with new
// ports.
func startActivated(t *testing.T, tool, network string, fdnames []string) *activatedChild {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const attempts = 5
	for range attempts {
		addrs := freeAddrs(t, network, len(fdnames))
		args := []string{"--fdname=" + strings.Join(fdnames, ":"), "-E", helperEnv + "=listeners"}
		if network == "udp" {
			args = append(args, "--datagram")
		}
		for _, a := range addrs {
			args = append(args, "--listen="+a)
		}
		args = append(args, self)

		cmd := exec.Command(tool, args...)
		cmd.Env = append(os.Environ(), "SYSTEMD_LOG_TARGET=console", "SYSTEMD_LOG_COLOR=0")
		c := &activatedChild{Process: testpeer.StartCommand(t, activatedLimit, cmd), addrs: addrs}
		err := c.WaitOutput(c.Stderr, "Listening on ", len(addrs), helperDeadline)
		switch {
		case err == nil:
			return c
		case errors.Is(err, testpeer.ErrExited) && strings.Contains(c.Stderr.String(), "in use"):
			continue // lost the port to another process
		default:
			t.Fatalf("%s: %v\n%s", tool, err, c.Stderr.String())
		}
	}
	t.Fatalf("no free ports after %d attempts", attempts)
	return nil
}

// wait waits for the child to exit and returns what it printed on stdout.
func (c *activatedChild) wait(t *testing.T) (string, error) {
	t.Helper()
	err := c.Wait(t, helperDeadline)
	return c.Stdout.String(), err
}

// freeAddrs returns n loopback addresses with ports that were free a moment
// ago; the caller copes with losing one.
func freeAddrs(t *testing.T, network string, n int) []string {
	t.Helper()
	var addrs []string
	var closers []func() error
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	for range n {
		if network == "udp" {
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			closers = append(closers, pc.Close)
			addrs = append(addrs, pc.LocalAddr().String())
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closers = append(closers, ln.Close)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs
}

// readName connects to addr and returns the line the helper writes.
func readName(addr string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, helperDeadline)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(helperDeadline)); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("reading from %s: %w", addr, err)
	}
	return strings.TrimSuffix(line, "\n"), nil
}

// poke makes the tool start its child: a connection or a datagram to addr.
func poke(network, addr string) error {
	conn, err := net.DialTimeout(network, addr, helperDeadline)
	if err != nil {
		return err
	}
	defer conn.Close()
	if network == "udp" {
		_, err = conn.Write([]byte("wake"))
	}
	return err
}

func containsLine(out, line string) bool {
	for l := range strings.Lines(out) {
		if strings.TrimSuffix(l, "\n") == line {
			return true
		}
	}
	return false
}
