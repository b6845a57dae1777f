package sd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// notifyDeadline bounds how long a test waits for a datagram it expects.
const notifyDeadline = 10 * time.Second

// listenNotify binds a unixgram socket in a temporary directory, points
// NOTIFY_SOCKET at it and returns it.
func listenNotify(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}

// unsetEnv unsets key for the duration of the test.
func unsetEnv(t *testing.T, key string) {
	t.Helper()
	t.Setenv(key, "")
	os.Unsetenv(key)
}

// readNotify returns the next datagram on conn, or an error when none arrives
// within timeout.
func readNotify(conn *net.UnixConn, timeout time.Duration) (string, error) {
	if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return "", err
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func monotonicUsec(t *testing.T) int64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano() / 1000
}

func TestNotifierMessages(t *testing.T) {
	tests := []struct {
		name string
		send func(*Notifier) error
		want string
	}{
		{"ready", (*Notifier).Ready, "READY=1"},
		{"stopping", (*Notifier).Stopping, "STOPPING=1"},
		{"status", func(n *Notifier) error { return n.Status("serving 3 streams") }, "STATUS=serving 3 streams"},
		{"status one line", func(n *Notifier) error { return n.Status("a\nREADY=1") }, "STATUS=a READY=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := listenNotify(t)
			n := NewNotifier()
			if !n.Enabled() {
				t.Fatal("Enabled() = false with NOTIFY_SOCKET set")
			}
			if err := tt.send(n); err != nil {
				t.Fatal(err)
			}
			got, err := readNotify(conn, notifyDeadline)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("sent %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNotifierReloading(t *testing.T) {
	conn := listenNotify(t)
	n := NewNotifier()
	before := monotonicUsec(t)
	if err := n.Reloading(); err != nil {
		t.Fatal(err)
	}
	after := monotonicUsec(t)
	got, err := readNotify(conn, notifyDeadline)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(got, "\n")
	if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("sent %q, want RELOADING=1 and MONOTONIC_USEC=", got)
	}
	usec, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64)
	if err != nil {
		t.Fatalf("MONOTONIC_USEC: %v", err)
	}
	if usec < before || usec > after {
		t.Errorf("MONOTONIC_USEC=%d, want within [%d, %d]", usec, before, after)
	}
}

func TestNotifierAbstractSocket(t *testing.T) {
	name := fmt.Sprintf("@rtmp-server-sd-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", name)
	if err := NewNotifier().Ready(); err != nil {
		t.Fatal(err)
	}
	if got, err := readNotify(conn, notifyDeadline); err != nil || got != "READY=1" {
		t.Fatalf("got %q, %v; want READY=1", got, err)
	}
}

func TestNotifierDisabled(t *testing.T) {
	unsetEnv(t, "NOTIFY_SOCKET")
	t.Setenv("WATCHDOG_USEC", "1000000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	n := NewNotifier()
	if n.Enabled() {
		t.Error("Enabled() = true without NOTIFY_SOCKET")
	}
	for name, send := range map[string]func() error{
		"Ready": n.Ready, "Reloading": n.Reloading, "Stopping": n.Stopping,
		"Status": func() error { return n.Status("x") },
	} {
		if err := send(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if got := n.WatchdogInterval(); got != 0 {
		t.Errorf("WatchdogInterval() = %v, want 0", got)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.Watchdog(context.Background(), func(context.Context) error { return nil }, slog.New(slog.DiscardHandler))
	}()
	select {
	case <-done:
	case <-time.After(notifyDeadline):
		t.Fatal("Watchdog did not return with the watchdog off")
	}
}

func TestNotifierSendError(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody-listens"))
	if err := NewNotifier().Ready(); err == nil {
		t.Error("Ready() = nil with no socket bound at NOTIFY_SOCKET")
	}
}

func TestWatchdogInterval(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	tests := []struct {
		name      string
		usec, pid string // "-" means unset
		want      time.Duration
	}{
		{"unset", "-", "-", 0},
		{"this process", "30000000", self, 30 * time.Second},
		{"no pid", "2000000", "-", 2 * time.Second},
		{"another process", "30000000", strconv.Itoa(os.Getpid() + 1), 0},
		{"malformed", "soon", self, 0},
		{"zero", "0", self, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			listenNotify(t)
			for key, v := range map[string]string{"WATCHDOG_USEC": tt.usec, "WATCHDOG_PID": tt.pid} {
				if v == "-" {
					unsetEnv(t, key)
				} else {
					t.Setenv(key, v)
				}
			}
			if got := NewNotifier().WatchdogInterval(); got != tt.want {
				t.Errorf("WatchdogInterval() = %v, want %v", got, tt.want)
			}
		})
	}
}

// wedgeMode is how a wedged health check behaves.
type wedgeMode int

const (
	blocks      wedgeMode = iota // returns ctx.Err() when its context ends
	fails                        // returns an error at once
	returnsLate                  // returns nil, but only after its context ended
)

// health is a health check the test wedges and releases.
type health struct {
	mode   wedgeMode
	called chan bool // receives, without blocking, whether each call was wedged

	mu   sync.Mutex
	gate chan struct{} // guarded by mu; nil when healthy, closed to release
}

func newHealth(mode wedgeMode) *health {
	return &health{mode: mode, called: make(chan bool, 1)}
}

func (h *health) check(ctx context.Context) error {
	h.mu.Lock()
	gate := h.gate
	h.mu.Unlock()
	select {
	case h.called <- gate != nil:
	default:
	}
	if gate == nil {
		return nil
	}
	switch h.mode {
	case fails:
		return errors.New("stuck")
	case returnsLate:
		<-ctx.Done()
		return nil
	}
	select {
	case <-gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *health) wedge() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gate = make(chan struct{})
}

func (h *health) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	close(h.gate)
	h.gate = nil
}

// waitCall waits until the check runs in the wedged state, or not.
func (h *health) waitCall(t *testing.T, wedged bool) {
	t.Helper()
	timeout := time.After(notifyDeadline)
	for {
		select {
		case got := <-h.called:
			if got == wedged {
				return
			}
		case <-timeout:
			t.Fatalf("no health check with wedged=%v within %v", wedged, notifyDeadline)
		}
	}
}

// logBuffer is an io.Writer safe for the watchdog goroutine and the test.
type logBuffer = testpeer.Buffer

func TestWatchdog(t *testing.T) {
	const interval = 200 * time.Millisecond
	for _, tt := range []struct {
		name string
		mode wedgeMode
	}{
		{"check blocks", blocks},
		{"check fails", fails},
		{"check returns late", returnsLate},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn := listenNotify(t)
			t.Setenv("WATCHDOG_USEC", strconv.FormatInt(interval.Microseconds(), 10))
			t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
			n := NewNotifier()
			if got := n.WatchdogInterval(); got != interval {
				t.Fatalf("WatchdogInterval() = %v, want %v", got, interval)
			}

			logs := new(logBuffer)
			h := newHealth(tt.mode)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				n.Watchdog(ctx, h.check, slog.New(slog.NewTextHandler(logs, nil)))
			}()
			defer func() {
				cancel()
				select {
				case <-done:
				case <-time.After(notifyDeadline):
					t.Error("Watchdog did not return after its context ended")
				}
			}()

			expectPings(t, conn, 2)

			h.wedge()
			h.waitCall(t, true)
			drain(t, conn) // pings sent before the wedged check began
			if msg, err := readNotify(conn, 4*interval); err == nil {
				t.Fatalf("sent %q while the health check was wedged", msg)
			} else if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal(err)
			}
			h.waitCall(t, true) // the check kept running in between
			if got := logs.Count("withholding keep-alive"); got != 1 {
				t.Errorf("failure logged %d times, want once:\n%s", got, logs)
			}

			h.release()
			expectPings(t, conn, 2)
			if got := logs.Count("healthy again"); got != 1 {
				t.Errorf("recovery logged %d times, want once", got)
			}
		})
	}
}

func expectPings(t *testing.T, conn *net.UnixConn, n int) {
	t.Helper()
	for range n {
		msg, err := readNotify(conn, notifyDeadline)
		if err != nil {
			t.Fatalf("waiting for WATCHDOG=1: %v", err)
		}
		if msg != "WATCHDOG=1" {
			t.Fatalf("sent %q, want WATCHDOG=1", msg)
		}
	}
}

// drain discards the datagrams already queued on conn.
func drain(t *testing.T, conn *net.UnixConn) {
	t.Helper()
	for {
		_, err := readNotify(conn, 0)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
