package daemon

// Helpers of the process-level event tests (events_test.go): the built
// server run as a child process, its log, ffmpeg peers, the Go RTMP client
// and Redis commands.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtmp-server/rtmp-server/internal/client"
	"github.com/rtmp-server/rtmp-server/internal/message"
	"github.com/rtmp-server/rtmp-server/internal/servertest"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

const (
	// evReadyLimit bounds the server's start-up, up to its "ready" line.
	evReadyLimit = 20 * time.Second
	// evExitLimit bounds the server's exit after SIGTERM; it may wait
	// ShutdownTimeout and then StopDeliveryTimeout.
	evExitLimit = ShutdownTimeout + StopDeliveryTimeout + 10*time.Second
	// evWaitLimit bounds waiting for something the test caused.
	evWaitLimit = 20 * time.Second
	// evProcLimit bounds a child process of these tests, which is killed
	// when the test ends in any case.
	evProcLimit = 5 * time.Minute
	// evCommandChannel is the Redis channel the servers subscribe to.
	evCommandChannel = "events_commands"
)

// buildEventsServer returns the rtmp-server binary shared by this
// package's process tests (see sysBinary).
func buildEventsServer(t *testing.T) string { return sysBinary(t) }

// evLine is one line of the server's log, with its key=value fields.
type evLine struct {
	raw    string
	fields map[string]string
}

// has reports whether the line holds every key and value of kv
// (key, value, key, value...).
func (l evLine) has(kv ...string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		if v, ok := l.fields[kv[i]]; !ok || v != kv[i+1] {
			return false
		}
	}
	return true
}

// parseLogLine reads the key=value pairs of an slog text line; a quoted
// value is unquoted. Lines of another shape give what they give.
func parseLogLine(raw string) map[string]string {
	fields := make(map[string]string)
	s := raw
	for {
		s = strings.TrimLeft(s, " ")
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || strings.ContainsRune(s[:eq], ' ') {
			return fields
		}
		key := s[:eq]
		s = s[eq+1:]
		var val string
		if strings.HasPrefix(s, `"`) {
			end := 1
			for end < len(s) && s[end] != '"' {
				if s[end] == '\\' {
					end++
				}
				end++
			}
			end = min(end+1, len(s))
			quoted := s[:end]
			val = quoted
			if v, err := strconv.Unquote(quoted); err == nil {
				val = v
			}
			s = s[end:]
		} else if sp := strings.IndexByte(s, ' '); sp >= 0 {
			val, s = s[:sp], s[sp:]
		} else {
			val, s = s, ""
		}
		fields[key] = val
	}
}

// evLog reads a process's log (its testpeer.Buffer) line by line and lets
// tests wait for lines.
type evLog struct {
	buf *testpeer.Buffer

	mu     sync.Mutex
	parsed int      // guarded by mu: bytes of buf read into lines
	lines  []evLine // guarded by mu: the complete lines read so far
}

func newEvLog(buf *testpeer.Buffer) *evLog { return &evLog{buf: buf} }

func (l *evLog) String() string { return l.buf.String() }

// matching returns the lines that match and the position of each.
func (l *evLog) matching(match func(evLine) bool) (lines []evLine, at []int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	text := l.buf.String()
	for {
		nl := strings.IndexByte(text[l.parsed:], '\n')
		if nl < 0 {
			break
		}
		raw := text[l.parsed : l.parsed+nl]
		l.lines = append(l.lines, evLine{raw: raw, fields: parseLogLine(raw)})
		l.parsed += nl + 1
	}
	for i, line := range l.lines {
		if match(line) {
			lines = append(lines, line)
			at = append(at, i)
		}
	}
	return lines, at
}

// wait waits until n lines match, ctx ends or stop is closed, and returns
// the matching lines.
func (l *evLog) wait(ctx context.Context, stop <-chan struct{}, n int, match func(evLine) bool) ([]evLine, error) {
	for {
		changed := l.buf.Changed()
		if lines, _ := l.matching(match); len(lines) >= n {
			return lines, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-stop:
			if lines, _ := l.matching(match); len(lines) >= n {
				return lines, nil
			}
			return nil, errors.New("stopped waiting")
		}
	}
}

// evServer is the rtmp-server binary running as a child process.
type evServer struct {
	addr    string // 127.0.0.1:port of the RTMP listener
	port    int
	cfgPath string // the --config file, rewritten by reload tests
	log     *evLog // the process's stderr
	proc    *testpeer.Process
}

// evSettings configure one server process.
type evSettings struct {
	file     []string // lines of the --config file
	env      []string // NAME=value, besides those startEvServer sets
	callback *testpeer.Callback
	redis    *testpeer.Redis
}

// Settings every test server shares, read from its --config file.
var evBaseFile = []string{
	"# settings shared by the event tests",
	"LOG_DEBUG=YES",
	"RTMP_HOST=" + evRTMPHost,
	"CUSTOM_JWT_SUBJECT=" + evSubject,
	"REDIS_CHANNEL=" + evCommandChannel,
	"BIND_ADDRESS=127.0.0.1",
}

// startEvServer runs the server on a loopback listener, passed to it as
// systemd's socket named rtmp, and waits for its "ready" line. It is
// killed, if still running, when the test ends, and its log is shown if
// the test failed.
func startEvServer(t *testing.T, bin string, st evSettings) *evServer {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "rtmp-server.env")
	if err := os.WriteFile(cfgPath, []byte(strings.Join(append(slices.Clone(evBaseFile), st.file...), "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln := testpeer.Listen(t)
	port := ln.Addr().(*net.TCPAddr).Port
	// RTMP_PORT names the passed socket's port, as a unit would: the
	// callback tokens carry it.
	env := []string{"PATH=" + os.Getenv("PATH"), "MAX_IP_CONCURRENT_CONNECTIONS=0", "ADMIN_ADDRESS=off", "RTMP_PORT=" + strconv.Itoa(port)}
	if evRaceEnabled {
		// A race report makes the exit status 66; skip the second the
		// race runtime otherwise sleeps at exit.
		env = append(env, "GORACE=atexit_sleep_ms=0")
	}
	if st.callback != nil {
		env = append(env, "CALLBACK_URL="+st.callback.URL(), "JWT_SECRET="+evSecret)
		st.callback.ExpectRTMPPort(port)
	}
	if st.redis != nil {
		_, port, _ := net.SplitHostPort(st.redis.Addr())
		env = append(env, "REDIS_USE=YES", "REDIS_HOST=127.0.0.1", "REDIS_PORT="+port)
	}
	env = append(env, st.env...)

	cmd := exec.Command(bin, "--config", cfgPath)
	cmd.Env = env
	testpeer.Activate(t, cmd, []string{socketRTMP}, ln)
	s := &evServer{addr: ln.Addr().String(), port: port, cfgPath: cfgPath}
	s.proc = testpeer.StartCommand(t, evProcLimit, cmd)
	s.log = newEvLog(s.proc.Stderr)
	t.Cleanup(func() { s.cleanup(t) })

	ctx, cancel := context.WithTimeout(context.Background(), evReadyLimit)
	defer cancel()
	if _, err := s.log.wait(ctx, s.proc.Done(), 1, func(l evLine) bool { return l.has("msg", "ready") }); err != nil {
		if s.proc.Exited() {
			t.Fatalf("server exited before ready (%v); log:\n%s", s.proc.Cmd.ProcessState, s.log.String())
		}
		t.Fatalf("server not ready within %v; log:\n%s", evReadyLimit, s.log.String())
	}
	return s
}

// cleanup kills the server if it still runs and fails the test if it
// reported a data race or crashed. It runs before the Process's own
// cleanup, which shows the log of a failed test.
func (s *evServer) cleanup(t *testing.T) {
	s.proc.Kill()
	out := s.log.String()
	if strings.Contains(out, "WARNING: DATA RACE") || strings.Contains(out, "panic:") || strings.Contains(out, "fatal error:") {
		t.Errorf("the server (port %d) reported a data race or crashed", s.port)
	}
}

// url is the RTMP URL of channel and key on this server.
func (s *evServer) url(channel, key string) string {
	return fmt.Sprintf("rtmp://%s/%s/%s", s.addr, channel, key)
}

// waitLog waits until n log lines match, failing the test after
// evWaitLimit, or at once if the server or watch (when not nil) exits.
func (s *evServer) waitLog(t *testing.T, what string, n int, watch *testpeer.Process, match func(evLine) bool) []evLine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), evWaitLimit)
	defer cancel()
	stop := s.proc.Done()
	if watch != nil {
		// Either process ending stops the wait.
		merged := make(chan struct{})
		go func() {
			defer close(merged)
			select {
			case <-s.proc.Done():
			case <-watch.Done():
			case <-ctx.Done():
			}
		}()
		stop = merged
	}
	lines, err := s.log.wait(ctx, stop, n, match)
	if err != nil {
		extra := ""
		if watch != nil {
			extra = fmt.Sprintf("\n%s stderr:\n%s", filepath.Base(watch.Cmd.Path), watch.Stderr.String())
		}
		t.Fatalf("waiting for %s in the server log: %v%s", what, err, extra)
	}
	return lines
}

// terminate sends SIGTERM and waits for the process to exit, which it must
// do with status 0.
func (s *evServer) terminate(t *testing.T) {
	t.Helper()
	s.proc.Signal(t, syscall.SIGTERM)
	if code := s.proc.ExitCode(t, evExitLimit); code != 0 {
		t.Fatalf("server exited with %v after SIGTERM, want status 0", s.proc.Cmd.ProcessState)
	}
}

// evRefusingPort returns a loopback port that refuses connections until the
// test ends (testpeer.RefusingAddr).
func evRefusingPort(t *testing.T) int {
	t.Helper()
	_, port, err := net.SplitHostPort(testpeer.RefusingAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// startEvPeer runs ffmpeg or ffprobe until it ends or the test does.
func startEvPeer(t *testing.T, name string, args ...string) *testpeer.Process {
	t.Helper()
	return testpeer.StartProcess(t, evProcLimit, name, args...)
}

// publishEvFFmpeg publishes generated H.264 and AAC to url, until killed
// or for as long as extra says (-t).
func publishEvFFmpeg(t *testing.T, url string, extra ...string) *testpeer.Process {
	t.Helper()
	return startEvPeer(t, "ffmpeg", testpeer.PublishArgs(url, testpeer.Source{Audio: true, GOP: 25}, extra...)...)
}

// evDialStream is servertest.DialStream with the deadline of these tests,
// which may wait for a held callback.
func evDialStream(t testing.TB, addr, channel string) (*client.Conn, error) {
	c, err := servertest.DialStream(t, addr, channel)
	if err != nil {
		return nil, err
	}
	if err := c.SetDeadline(time.Now().Add(evWaitLimit)); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// evPublish connects to channel with the Go client and publishes key. The
// connection is returned whenever it was made, for the caller to close.
// It may run in any goroutine.
func evPublish(t testing.TB, addr, channel, key string) (*client.Conn, client.Status, error) {
	c, err := evDialStream(t, addr, channel)
	if err != nil {
		return nil, client.Status{}, err
	}
	st, err := c.Publish(key)
	return c, st, err
}

// evPlayMedia plays channel/key with the Go client until a video message
// arrives.
func evPlayMedia(t *testing.T, addr, channel, key string) {
	t.Helper()
	c, err := evDialStream(t, addr, channel)
	if err != nil {
		t.Fatalf("player: %v", err)
	}
	defer c.Close()
	if st, err := c.Play(key); err != nil || st.Code != "NetStream.Play.Start" {
		t.Fatalf("play: %v %v", st, err)
	}
	for _, m := range c.Pending {
		if m.Type == message.TypeVideo {
			return
		}
	}
	for {
		m, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("player: no video: %v", err)
		}
		if m.Type == message.TypeVideo {
			return
		}
	}
}

// sendEvCommand publishes a control command on the servers' Redis channel;
// exactly one subscriber must receive it.
func sendEvCommand(t *testing.T, r *testpeer.Redis, msg string) {
	t.Helper()
	rc := redis.NewClient(&redis.Options{Addr: r.Addr(), Protocol: 2})
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := rc.Publish(ctx, evCommandChannel, msg).Result()
	if err != nil {
		t.Fatalf("redis PUBLISH %q: %v", msg, err)
	}
	if n != 1 {
		t.Fatalf("redis PUBLISH %q reached %d subscribers, want 1", msg, n)
	}
}
