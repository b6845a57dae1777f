package server

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/client"
	"github.com/rtmp-server/rtmp-server/internal/servertest"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// netnsEnv marks the copy of the test binary that runs inside a private
// network namespace (see TestPerIPLimitIPv6Prefix).
const netnsEnv = "RTMP_TEST_IPV6_NETNS"

// Addresses given to the namespace's loopback: two in one /64, one in
// another.
const (
	netnsAddrA1 = "fd00:64:0:1::1"
	netnsAddrA2 = "fd00:64:0:1::2"
	netnsAddrB1 = "fd00:64:0:2::1"
)

// startIPv6Server serves on [::]:0 (or [::1]:0) with the per-IP limit 1
// and mod applied; it skips the test where IPv6 is unavailable.
func startIPv6Server(t *testing.T, host string, mod func(*Options)) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp6", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Skipf("IPv6 unavailable: %v", err)
	}
	cfg := DefaultOptions()
	cfg.MaxIPConnections = 1
	if mod != nil {
		mod(&cfg)
	}
	srv := mustNew(t, cfg, nil)
	servertest.Serve(t, srv, ln, ErrServerClosed)
	return srv, ln.Addr().String()
}

// connectFrom connects to addr from the local address from ("" for any)
// and sends connect; it returns the connection, to be closed by the
// caller, and the connect's error.
func connectFrom(t *testing.T, from, addr string) (*client.Conn, error) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	nc, err := d.Dial("tcp6", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, from, err)
	}
	c, err := client.Handshake(nc, 5*time.Second)
	if err != nil {
		t.Fatalf("handshake from %s: %v", from, err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, c.Connect("live")
}

// wantLimited checks that err is the per-IP refusal.
func wantLimited(t *testing.T, from string, err error) {
	t.Helper()
	var st client.Status
	if !errors.As(err, &st) || st.Code != "NetConnection.Connect.Rejected" || !strings.Contains(st.Description, "Too many connections") {
		t.Fatalf("connect from %s: %v, want NetConnection.Connect.Rejected for too many connections", from, err)
	}
}

// TestPerIPLimitIPv6Loopback: over real IPv6 loopback, the limit applies to
// ::1 on the server path.
func TestPerIPLimitIPv6Loopback(t *testing.T) {
	_, addr := startIPv6Server(t, "::1", nil)
	if _, err := connectFrom(t, "", addr); err != nil {
		t.Fatalf("first connection from ::1: %v", err)
	}
	_, err := connectFrom(t, "", addr)
	wantLimited(t, "::1", err)
}

// TestPerIPLimitIPv6Prefix: in a private network namespace whose loopback
// holds two addresses of one /64 and one of another, a second client of
// the same /64 is refused, one of another /64 is not, and with
// CONCURRENT_LIMIT_IPV6_PREFIX=128 the same-/64 client is let in. It runs
// itself again under `unshare --net`, which needs root; elsewhere it skips.
func TestPerIPLimitIPv6Prefix(t *testing.T) {
	if os.Getenv(netnsEnv) != "1" {
		unshare := testpeer.Need(t, "unshare")
		testpeer.Need(t, "ip")
		if os.Geteuid() != 0 {
			t.Skip("a private network namespace needs root")
		}
		cmd := exec.Command(unshare, "--net", "--", os.Args[0], "-test.run", "^TestPerIPLimitIPv6Prefix$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), netnsEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil && strings.Contains(string(out), "unshare failed") {
			t.Skipf("no private network namespace here: %s", out)
		}
		switch {
		case err != nil:
			t.Fatalf("the test inside the namespace failed: %v\n%s", err, out)
		case strings.Contains(string(out), "--- SKIP"):
			t.Skipf("skipped inside the namespace:\n%s", out)
		case !strings.Contains(string(out), "--- PASS: TestPerIPLimitIPv6Prefix"):
			t.Fatalf("the test did not run inside the namespace:\n%s", out)
		}
		return
	}

	setup := [][]string{{"link", "set", "lo", "up"}}
	for _, a := range []string{netnsAddrA1, netnsAddrA2, netnsAddrB1} {
		setup = append(setup, []string{"-6", "addr", "add", a + "/64", "dev", "lo", "nodad"})
	}
	for _, args := range setup {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	srv, addr := startIPv6Server(t, "::", nil)
	if _, err := connectFrom(t, netnsAddrA1, addr); err != nil {
		t.Fatalf("first client of the /64: %v", err)
	}
	_, err := connectFrom(t, netnsAddrA2, addr)
	wantLimited(t, netnsAddrA2+" (same /64)", err)
	if _, err := connectFrom(t, netnsAddrB1, addr); err != nil {
		t.Fatalf("client of another /64: %v", err)
	}

	cfg := DefaultOptions()
	cfg.MaxIPConnections = 1
	cfg.IPv6LimitPrefix = 128
	mustSetOptions(t, srv, cfg)
	if _, err := connectFrom(t, netnsAddrA2, addr); err != nil {
		t.Fatalf("with CONCURRENT_LIMIT_IPV6_PREFIX=128, a second address of the /64: %v", err)
	}
	_, err = connectFrom(t, netnsAddrA2, addr)
	wantLimited(t, netnsAddrA2+" (same address, /128)", err)
}
