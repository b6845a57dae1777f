package daemon

// Process-level tests of the systemd integration: socket activation with
// named sockets (systemd-socket-activate), sd_notify on a test-owned
// unixgram NOTIFY_SOCKET, the watchdog, reload, RTMPS with certificate
// reload, and graceful stop.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/client"
	"github.com/rtmp-server/rtmp-server/internal/config"
	"github.com/rtmp-server/rtmp-server/internal/hub"
	"github.com/rtmp-server/rtmp-server/internal/sd"
	"github.com/rtmp-server/rtmp-server/internal/servertest"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

var (
	sysBinOnce sync.Once
	sysBin     string
	sysBinErr  error
)

// sysBinary builds the server binary once for this package's tests, with
// the race detector when the tests have it, so that a race or panic in the
// server fails them.
func sysBinary(t *testing.T) string {
	t.Helper()
	sysBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rtmp-server-bin")
		if err != nil {
			sysBinErr = err
			return
		}
		sysBin = filepath.Join(dir, "rtmp-server")
		args := []string{"build", "-o", sysBin}
		if evRaceEnabled {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, "../../cmd/rtmp-server")...).CombinedOutput()
		if err != nil {
			sysBinErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if sysBinErr != nil {
		t.Fatal(sysBinErr)
	}
	return sysBin
}

// lockedBuffer collects output written from several goroutines.
type lockedBuffer = testpeer.Buffer

// procLimit bounds a child process of these tests, which is killed when
// the test ends in any case.
const procLimit = 5 * time.Minute

// procCommand is the command of a child process whose environment is PATH
// and env only.
func procCommand(env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	// The admin listener is off unless a test turns it on: its default
	// port is fixed. systemd-socket-activate passes on only what -E names:
	// its callers add "-E", "ADMIN_ADDRESS".
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "ADMIN_ADDRESS=off"}, env...)
	return cmd
}

// startProc runs name with args, with PATH and env as its environment.
func startProc(t *testing.T, env []string, name string, args ...string) *testpeer.Process {
	t.Helper()
	return testpeer.StartCommand(t, procLimit, procCommand(env, name, args...))
}

// startServing runs the server binary with args, passing ln as systemd's
// socket named rtmp (and rtmps as the one named rtmps, when not nil).
func startServing(t *testing.T, env []string, ln, rtmps net.Listener, bin string, args ...string) *testpeer.Process {
	t.Helper()
	cmd := procCommand(env, bin, args...)
	if rtmps == nil {
		testpeer.Activate(t, cmd, []string{socketRTMP}, ln)
	} else {
		testpeer.Activate(t, cmd, []string{socketRTMP, socketRTMPS}, ln, rtmps)
	}
	return testpeer.StartCommand(t, procLimit, cmd)
}

// waitLog waits until p's log (its stderr) holds s n times.
func waitLog(t *testing.T, p *testpeer.Process, s string, n int, timeout time.Duration) {
	t.Helper()
	if err := p.WaitOutput(p.Stderr, s, n, timeout); err != nil {
		t.Fatalf("waiting for %q in the log: %v", s, err)
	}
}

// freePort returns a loopback port that was free a moment ago, for the
// tests where systemd-socket-activate binds the socket itself and for the
// daemon run in this process (TestWatchdogSilentWhileWedged).
func freePort(t *testing.T) int {
	t.Helper()
	ln := testpeer.Listen(t)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func writeEnv(t *testing.T, path string, lines ...string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// notifySocket is a test-owned NOTIFY_SOCKET collecting datagrams.
type notifySocket struct {
	path string
	conn *net.UnixConn
	msgs chan string
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n := &notifySocket{path: path, conn: conn, msgs: make(chan string, 1024)}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				close(n.msgs)
				return
			}
			n.msgs <- string(buf[:k])
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return n
}

// expect reads datagrams until one starts with prefix and returns it.
func (n *notifySocket) expect(t *testing.T, prefix string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m, ok := <-n.msgs:
			if !ok {
				t.Fatalf("notify socket closed before %q", prefix)
			}
			if strings.HasPrefix(m, prefix) {
				return m
			}
		case <-deadline:
			t.Fatalf("no %q notification within %v", prefix, timeout)
		}
	}
}

func TestSocketActivationServesFFmpeg(t *testing.T) {
	activate := testpeer.Need(t, "systemd-socket-activate")
	testpeer.Need(t, "ffmpeg")
	bin := sysBinary(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "rtmp-server.env")
	// RTMP_PORT differs from the socket's port: the passed socket wins.
	writeEnv(t, cfgPath, "RTMP_PORT=1", "MAX_IP_CONCURRENT_CONNECTIONS=0")
	notify := newNotifySocket(t)
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	startProc(t, nil, activate, "-l", addr, "--fdname=rtmp", "-E", "ADMIN_ADDRESS", "-E", "NOTIFY_SOCKET="+notify.path,
		bin, "--config", cfgPath)
	waitListening(t, addr)

	url := "rtmp://" + addr + "/live/k"
	pub := startProc(t, nil, "ffmpeg", testpeer.PublishArgs(url, testpeer.Source{GOP: 25, Duration: 20 * time.Second})...)
	notify.expect(t, "READY=1", 15*time.Second)
	probe := startProc(t, nil, "ffprobe", "-v", "error", "-rw_timeout", "10000000", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", url)
	if code := probe.ExitCode(t, 30*time.Second); code != 0 {
		t.Fatalf("ffprobe exit %d: %s", code, probe.Stderr.String())
	}
	if got := strings.TrimSpace(probe.Stdout.String()); got != "h264,320,240" {
		t.Fatalf("ffprobe saw %q", got)
	}
	pub.Kill()
}

func TestSocketActivationRejectsUnknownName(t *testing.T) {
	activate := testpeer.Need(t, "systemd-socket-activate")
	bin := sysBinary(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startProc(t, nil, activate, "-l", addr, "--fdname=bogus", "-E", "ADMIN_ADDRESS", bin, "--config", "/dev/null")
	// The child starts on the first connection.
	c, err := dialRetry(addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	waitLog(t, p, `"bogus"`, 1, 15*time.Second)
	if code := p.ExitCode(t, 15*time.Second); code == 0 {
		t.Fatal("exit 0 with an unknown socket name")
	}

	// An rtmps socket without a certificate is refused too.
	addr2 := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	addr3 := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p2 := startProc(t, nil, activate, "-l", addr2, "-l", addr3, "--fdname=rtmp:rtmps", "-E", "ADMIN_ADDRESS", bin, "--config", "/dev/null")
	c, err = dialRetry(addr2)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	waitLog(t, p2, "SSL_CERT and SSL_KEY are not set", 1, 15*time.Second)
	if code := p2.ExitCode(t, 15*time.Second); code == 0 {
		t.Fatal("exit 0 with an rtmps socket and no certificate")
	}
}

func dialRetry(addr string) (net.Conn, error) {
	var err error
	for i := 0; i < 100; i++ {
		var c net.Conn
		if c, err = net.Dial("tcp", addr); err == nil {
			return c, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, err
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	c, err := dialRetry(addr)
	if err != nil {
		t.Fatalf("nothing listens on %s: %v", addr, err)
	}
	c.Close()
}

func TestNotifyLifecycle(t *testing.T) {
	bin := sysBinary(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "rtmp-server.env")
	ln := testpeer.Listen(t)
	writeEnv(t, cfgPath, fmt.Sprintf("RTMP_PORT=%d", ln.Addr().(*net.TCPAddr).Port), "BIND_ADDRESS=127.0.0.1")
	notify := newNotifySocket(t)
	p := startServing(t, []string{"NOTIFY_SOCKET=" + notify.path, "WATCHDOG_USEC=400000"}, ln, nil, bin, "--config", cfgPath)

	notify.expect(t, "READY=1", 15*time.Second)
	if st := notify.expect(t, "STATUS=", 15*time.Second); !strings.Contains(st, "publishers") {
		t.Fatalf("status %q", st)
	}
	for i := 0; i < 3; i++ {
		notify.expect(t, "WATCHDOG=1", 5*time.Second)
	}
	p.Signal(t, syscall.SIGHUP)
	m := notify.expect(t, "RELOADING=1", 10*time.Second)
	if !strings.Contains(m, "MONOTONIC_USEC=") {
		t.Fatalf("reloading without MONOTONIC_USEC: %q", m)
	}
	notify.expect(t, "READY=1", 10*time.Second)
	start := time.Now()
	p.Signal(t, syscall.SIGTERM)
	notify.expect(t, "STOPPING=1", 10*time.Second)
	if code := p.ExitCode(t, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	t.Logf("stopped %v after SIGTERM", time.Since(start).Round(time.Millisecond))
}

// TestWatchdogSilentWhileWedged runs the daemon in this process, wedges
// its stream registry and checks that no WATCHDOG=1 is sent until it
// recovers.
func TestWatchdogSilentWhileWedged(t *testing.T) {
	notify := newNotifySocket(t)
	t.Setenv("NOTIFY_SOCKET", notify.path)
	t.Setenv("WATCHDOG_USEC", "200000")
	t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()))
	cfg := config.Default()
	// In this process the daemon binds RTMP_PORT itself: it takes bound
	// sockets only as descriptors 3 onwards named in LISTEN_FDS, which
	// belong to the test binary here.
	cfg.RTMPPort = freePort(t)
	cfg.BindAddress = "127.0.0.1"
	cfg.LogRequests = false
	logs := &lockedBuffer{}
	d := &daemon{log: slog.New(slog.NewTextHandler(logs, nil)), level: new(slog.LevelVar), notifier: sd.NewNotifier(), fatal: make(chan error, 4)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.run(ctx, cfg, nil) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	notify.expect(t, "READY=1", 10*time.Second)
	notify.expect(t, "WATCHDOG=1", 5*time.Second)

	// A publication to hold the registry's lock through.
	c, err := servertest.DialStream(t, cfg.RTMPAddr(), "live")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Publish("k"); err != nil {
		t.Fatal(err)
	}

	wedged := make(chan struct{})
	release := make(chan struct{})
	go d.srv.Hub().Kick("live", errors.New("test"), func(*hub.Publication) bool {
		close(wedged)
		<-release
		return false
	})
	<-wedged
	// Drain pings already in flight, then expect silence for many intervals.
	drainUntilQuiet(notify, 300*time.Millisecond)
	silence := time.After(1500 * time.Millisecond)
	for quiet := true; quiet; {
		select {
		case m := <-notify.msgs:
			if strings.HasPrefix(m, "WATCHDOG=1") {
				close(release)
				t.Fatal("WATCHDOG=1 sent while the registry was wedged")
			}
		case <-silence:
			quiet = false
		}
	}
	close(release)
	notify.expect(t, "WATCHDOG=1", 5*time.Second)
}

// drainUntilQuiet reads notifications until none arrived for quiet.
func drainUntilQuiet(n *notifySocket, quiet time.Duration) {
	for {
		select {
		case <-n.msgs:
		case <-time.After(quiet):
			return
		}
	}
}

func TestReloadAppliesWhitelistWithoutDroppingStream(t *testing.T) {
	testpeer.Need(t, "ffmpeg")
	bin := sysBinary(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "rtmp-server.env")
	ln := testpeer.Listen(t)
	addr := ln.Addr().String()
	base := []string{fmt.Sprintf("RTMP_PORT=%d", ln.Addr().(*net.TCPAddr).Port), "BIND_ADDRESS=127.0.0.1", "MAX_IP_CONCURRENT_CONNECTIONS=0"}
	writeEnv(t, cfgPath, base...)
	srv := startServing(t, nil, ln, nil, bin, "--config", cfgPath)
	waitLog(t, srv, "msg=ready", 1, 15*time.Second)
	pub := startProc(t, nil, "ffmpeg", testpeer.PublishArgs("rtmp://"+addr+"/live/k",
		testpeer.Source{Width: 160, Height: 120, GOP: 25, Duration: time.Minute})...)
	waitLog(t, srv, "msg=publish", 1, 15*time.Second)

	play := func() (client.Status, error) {
		c, err := servertest.DialStream(t, addr, "live")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.Play("k")
	}
	if st, err := play(); err != nil || st.Code != "NetStream.Play.Start" {
		t.Fatalf("before reload: %v %v", st, err)
	}

	writeEnv(t, cfgPath, append(base, "RTMP_PLAY_WHITELIST=10.0.0.0/8")...)
	srv.Signal(t, syscall.SIGHUP)
	waitLog(t, srv, "configuration reloaded", 1, 10*time.Second)
	if st, _ := play(); st.Code != "NetStream.Play.BadName" {
		t.Fatalf("after reload: %v, want NetStream.Play.BadName", st)
	}

	// An invalid file changes nothing.
	writeEnv(t, cfgPath, append(base, "RTMP_PLAY_WHITELIST=*", "MAX_IP_CONCURRENT_CONNECTIONS=-1")...)
	srv.Signal(t, syscall.SIGHUP)
	waitLog(t, srv, "still running on the previous one", 1, 10*time.Second)
	if !strings.Contains(srv.Stderr.String(), "MAX_IP_CONCURRENT_CONNECTIONS") {
		t.Fatal("the reload error does not name the variable")
	}
	if st, _ := play(); st.Code != "NetStream.Play.BadName" {
		t.Fatalf("after invalid reload: %v, want the previous whitelist to hold", st)
	}
	// The publisher was never dropped.
	select {
	case <-pub.Done():
		t.Fatalf("publisher ended during reloads: %v\n%s", pub.Err(), pub.Stderr.String())
	default:
	}
	if strings.Contains(srv.Stderr.String(), "msg=unpublish") {
		t.Fatal("the stream was unpublished by a reload")
	}
}

// writeCert writes a self-signed certificate with the given serial, and its key.
func writeCert(t *testing.T, certPath, keyPath string, serial int64) {
	t.Helper()
	testpeer.SelfSigned(t, serial).WriteFiles(t, certPath, keyPath)
}

func servedSerial(t *testing.T, addr string) int64 {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

func TestRTMPSAndCertificateReload(t *testing.T) {
	testpeer.Need(t, "ffmpeg")
	bin := sysBinary(t)
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCert(t, certPath, keyPath, 1001)
	cfgPath := filepath.Join(dir, "rtmp-server.env")
	ln, sslLn := testpeer.Listen(t), testpeer.Listen(t)
	port, sslPort := ln.Addr().(*net.TCPAddr).Port, sslLn.Addr().(*net.TCPAddr).Port
	writeEnv(t, cfgPath, fmt.Sprintf("RTMP_PORT=%d", port), fmt.Sprintf("SSL_PORT=%d", sslPort), "BIND_ADDRESS=127.0.0.1",
		"SSL_CERT="+certPath, "SSL_KEY="+keyPath, "SSL_CHECK_RELOAD_SECONDS=0", "MAX_IP_CONCURRENT_CONNECTIONS=0")
	srv := startServing(t, nil, ln, sslLn, bin, "--config", cfgPath)
	waitLog(t, srv, "msg=ready", 1, 15*time.Second)
	sslAddr := fmt.Sprintf("127.0.0.1:%d", sslPort)

	url := "rtmps://" + sslAddr + "/live/k"
	pub := startProc(t, nil, "ffmpeg", testpeer.PublishArgs(url, testpeer.Source{Audio: true, GOP: 25, Duration: time.Minute})...)
	waitLog(t, srv, "msg=publish", 1, 20*time.Second)
	play := startProc(t, nil, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-rw_timeout", "10000000",
		"-i", url, "-map", "0:v", "-frames:v", "25", "-f", "framecrc", "-")
	if code := play.ExitCode(t, 30*time.Second); code != 0 {
		t.Fatalf("rtmps player exit %d: %s", code, play.Stderr.String())
	}
	if n := strings.Count(play.Stdout.String(), "\n0,"); n < 25 {
		t.Fatalf("rtmps player decoded %d frames", n)
	}
	if got := servedSerial(t, sslAddr); got != 1001 {
		t.Fatalf("serial %d, want 1001", got)
	}

	// Renewal: new files, then SIGHUP (the certbot deploy-hook case).
	writeCert(t, certPath, keyPath, 2002)
	srv.Signal(t, syscall.SIGHUP)
	waitLog(t, srv, "configuration reloaded", 1, 10*time.Second)
	if got := servedSerial(t, sslAddr); got != 2002 {
		t.Fatalf("serial %d after renewal, want 2002", got)
	}
	// A broken replacement (certificate without its key) keeps the old pair.
	writeCert(t, certPath, "", 3003)
	srv.Signal(t, syscall.SIGHUP)
	waitLog(t, srv, "configuration reloaded", 2, 10*time.Second)
	if got := servedSerial(t, sslAddr); got != 2002 {
		t.Fatalf("serial %d after a broken replacement, want 2002 kept", got)
	}
	if !strings.Contains(srv.Stderr.String(), "certificate not replaced") {
		t.Fatal("the broken replacement was not logged")
	}
	// The stream in progress was not affected.
	select {
	case <-pub.Done():
		t.Fatalf("rtmps publisher ended: %v\n%s", pub.Err(), pub.Stderr.String())
	default:
	}
	// TLS older than 1.2 is refused.
	c, err := tls.Dial("tcp", sslAddr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11})
	if err == nil {
		c.Close()
		t.Fatal("TLS 1.1 handshake accepted")
	}
}
