package testpeer

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	// redisStartLimit bounds how long a redis-server may take to answer PING.
	redisStartLimit = 10 * time.Second
	// redisPortAttempts is how many free ports StartRedis tries before failing.
	redisPortAttempts = 5
)

// RedisOption configures StartRedis.
type RedisOption func(*redisOptions)

type redisOptions struct {
	password string
	certFile string
	keyFile  string
}

// WithRedisPassword makes the server require AUTH with password.
func WithRedisPassword(password string) RedisOption {
	return func(o *redisOptions) { o.password = password }
}

// WithRedisTLS makes the server accept only TLS connections, presenting the
// PEM certificate and key in the given files. Clients are not asked for a
// certificate.
func WithRedisTLS(certFile, keyFile string) RedisOption {
	return func(o *redisOptions) { o.certFile, o.keyFile = certFile, keyFile }
}

// Redis is a redis-server started for one test, listening on a loopback
// port, without persistence. Its methods must be called from the test's
// goroutine.
type Redis struct {
	t        testing.TB
	bin      string
	dir      string // log file and working directory
	port     int
	password string
	certFile string // TLS when set
	keyFile  string

	cmd  *exec.Cmd     // nil while stopped
	done chan struct{} // closed when cmd has exited
}

// StartRedis starts a redis-server on a free loopback port and waits until it
// answers PING. It is stopped when the test ends. The test is skipped (or
// fails under RTMP_TEST_REQUIRE_PEERS=1) when redis-server is not installed.
func StartRedis(t testing.TB, opts ...RedisOption) *Redis {
	t.Helper()
	var o redisOptions
	for _, opt := range opts {
		opt(&o)
	}
	r := &Redis{
		t:        t,
		bin:      Need(t, "redis-server"),
		dir:      t.TempDir(),
		password: o.password,
		certFile: o.certFile,
		keyFile:  o.keyFile,
	}
	t.Cleanup(r.Stop)

	var lastErr error
	for range redisPortAttempts {
		port, err := freeLoopbackPort()
		if err != nil {
			t.Fatalf("redis: picking a port: %v", err)
		}
		r.port = port
		if lastErr = r.start(); lastErr == nil {
			return r
		}
		// Most likely someone else took the port between our probe and
		// redis-server's bind; try another one.
	}
	t.Fatalf("redis: could not start after %d attempts: %v", redisPortAttempts, lastErr)
	return nil
}

// Addr returns the server's host:port.
func (r *Redis) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port))
}

// Password returns the password the server requires, or "".
func (r *Redis) Password() string { return r.password }

// Stop kills the server and waits for it to exit, as an abrupt outage would.
// Stopping a stopped server does nothing.
func (r *Redis) Stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
}

// Restart stops the server if it runs and starts it again on the same port,
// waiting until it answers PING. Its data is not kept.
func (r *Redis) Restart() {
	r.t.Helper()
	r.Stop()
	// The port was ours a moment ago; retry briefly in case the bind races
	// with the old process's sockets going away.
	deadline := time.Now().Add(redisStartLimit)
	retry := time.NewTicker(50 * time.Millisecond)
	defer retry.Stop()
	for {
		err := r.start()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis: restart on port %d: %v", r.port, err)
		}
		<-retry.C
	}
}

// start runs redis-server on r.port and waits for PING. On failure the
// process is gone when start returns.
func (r *Redis) start() error {
	logFile := filepath.Join(r.dir, "redis.log")
	args := []string{
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", r.dir,
		"--logfile", logFile,
		"--daemonize", "no",
	}
	if r.certFile == "" {
		args = append(args, "--port", strconv.Itoa(r.port))
	} else {
		args = append(args,
			"--port", "0", // no plain-text port
			"--tls-port", strconv.Itoa(r.port),
			"--tls-cert-file", r.certFile,
			"--tls-key-file", r.keyFile,
			"--tls-auth-clients", "no",
		)
	}
	if r.password != "" {
		args = append(args, "--requirepass", r.password)
	}
	cmd := exec.Command(r.bin, args...)
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()

	deadline := time.Now().Add(redisStartLimit)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := r.ping()
		if err == nil {
			r.cmd, r.done = cmd, done
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server exited: %v; log: %s", cmd.ProcessState, logTail(logFile))
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("no PONG within %v (last: %v); log: %s", redisStartLimit, err, logTail(logFile))
		}
	}
}

// ping authenticates if needed and sends PING, expecting PONG.
func (r *Redis) ping() error {
	dialer := &net.Dialer{Timeout: time.Second}
	var conn net.Conn
	var err error
	if r.certFile != "" {
		// Readiness only: the tests check the certificate themselves.
		conn, err = tls.DialWithDialer(dialer, "tcp", r.Addr(), &tls.Config{InsecureSkipVerify: true})
	} else {
		conn, err = dialer.Dial("tcp", r.Addr())
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	rd := bufio.NewReader(conn)
	if r.password != "" {
		if err := redisCommand(conn, rd, "+OK", "AUTH", r.password); err != nil {
			return err
		}
	}
	return redisCommand(conn, rd, "+PONG", "PING")
}

// redisCommand writes one command as a RESP array and checks the reply line.
func redisCommand(conn net.Conn, rd *bufio.Reader, want string, args ...string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return err
	}
	line, err := rd.ReadString('\n')
	if err != nil {
		return err
	}
	if got := strings.TrimRight(line, "\r\n"); got != want {
		return fmt.Errorf("%s: got %q", args[0], got)
	}
	return nil
}

// freeLoopbackPort returns a port that was free a moment ago.
func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// logTail returns the end of a log file for error messages.
func logTail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	const keep = 2000
	if len(data) > keep {
		data = data[len(data)-keep:]
	}
	return string(data)
}
