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
	// evPortAttempts is how many free ports a server start tries.
	evPortAttempts = 5
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

// evLog collects a process's stderr and lets tests wait for lines.
type evLog struct {
	mu      sync.Mutex
	text    strings.Builder // guarded by mu: everything written
	partial string          // guarded by mu: the unfinished last line
	lines   []evLine        // guarded by mu
	changed chan struct{}   // guarded by mu: closed and replaced on each new line
}

func newEvLog() *evLog { return &evLog{changed: make(chan struct{})} }

func (l *evLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.text.Write(p)
	rest := l.partial + string(p)
	added := false
	for {
		nl := strings.IndexByte(rest, '\n')
		if nl < 0 {
			break
		}
		raw := rest[:nl]
		rest = rest[nl+1:]
		l.lines = append(l.lines, evLine{raw: raw, fields: parseLogLine(raw)})
		added = true
	}
	l.partial = rest
	if added {
		close(l.changed)
		l.changed = make(chan struct{})
	}
	return len(p), nil
}

func (l *evLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.text.String()
}

// matching returns the lines that match and the position of each.
func (l *evLog) matching(match func(evLine) bool) (lines []evLine, at []int) {
	l.mu.Lock()
	defer l.mu.Unlock()
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
		l.mu.Lock()
		changed := l.changed
		l.mu.Unlock()
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
	log     *evLog
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited and its log is complete
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

// startEvServer runs the server on a free loopback port and waits for its
// "ready" line. It is killed, if still running, when the test ends, and
// its log is shown if the test failed.
func startEvServer(t *testing.T, bin string, st evSettings) *evServer {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "rtmp-server.env")
	if err := os.WriteFile(cfgPath, []byte(strings.Join(append(slices.Clone(evBaseFile), st.file...), "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "MAX_IP_CONCURRENT_CONNECTIONS=0", "ADMIN_ADDRESS=off"}
	if evRaceEnabled {
		// A race report makes the exit status 66; skip the second the
		// race runtime otherwise sleeps at exit.
		env = append(env, "GORACE=atexit_sleep_ms=0")
	}
	if st.callback != nil {
		env = append(env, "CALLBACK_URL="+st.callback.URL(), "JWT_SECRET="+evSecret)
	}
	if st.redis != nil {
		_, port, _ := net.SplitHostPort(st.redis.Addr())
		env = append(env, "REDIS_USE=YES", "REDIS_HOST=127.0.0.1", "REDIS_PORT="+port)
	}
	env = append(env, st.env...)

	for attempt := 1; ; attempt++ {
		port := evFreePort(t)
		if st.callback != nil {
			st.callback.ExpectRTMPPort(port)
		}
		s := &evServer{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), port: port, cfgPath: cfgPath, log: newEvLog(), done: make(chan struct{})}
		s.cmd = exec.Command(bin, "--config", cfgPath)
		s.cmd.Env = append(slices.Clone(env), "RTMP_PORT="+strconv.Itoa(port))
		s.cmd.Stderr = s.log
		if err := s.cmd.Start(); err != nil {
			t.Fatalf("starting the server: %v", err)
		}
		go func() {
			_ = s.cmd.Wait()
			close(s.done)
		}()
		t.Cleanup(func() { s.cleanup(t) })

		ctx, cancel := context.WithTimeout(context.Background(), evReadyLimit)
		_, err := s.log.wait(ctx, s.done, 1, func(l evLine) bool { return l.has("msg", "ready") })
		cancel()
		if err == nil {
			return s
		}
		select {
		case <-s.done:
			if strings.Contains(s.log.String(), "address already in use") && attempt < evPortAttempts {
				continue // someone took the port since we probed it
			}
			t.Fatalf("server exited before ready (%v); log:\n%s", s.cmd.ProcessState, s.log.String())
		default:
			t.Fatalf("server not ready within %v; log:\n%s", evReadyLimit, s.log.String())
		}
	}
}

func (s *evServer) cleanup(t *testing.T) {
	select {
	case <-s.done:
	default:
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	out := s.log.String()
	if strings.Contains(out, "WARNING: DATA RACE") || strings.Contains(out, "panic:") || strings.Contains(out, "fatal error:") {
		t.Errorf("the server reported a data race or crashed; log:\n%s", out)
	} else if t.Failed() {
		t.Logf("server log (port %d):\n%s", s.port, out)
	}
}

// url is the RTMP URL of channel and key on this server.
func (s *evServer) url(channel, key string) string {
	return fmt.Sprintf("rtmp://%s/%s/%s", s.addr, channel, key)
}

// waitLog waits until n log lines match, failing the test after
// evWaitLimit, or at once if the server or watch (when not nil) exits.
func (s *evServer) waitLog(t *testing.T, what string, n int, watch *evPeer, match func(evLine) bool) []evLine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), evWaitLimit)
	defer cancel()
	stop := s.done
	if watch != nil {
		// Either process ending stops the wait.
		merged := make(chan struct{})
		go func() {
			defer close(merged)
			select {
			case <-s.done:
			case <-watch.done:
			case <-ctx.Done():
			}
		}()
		stop = merged
	}
	lines, err := s.log.wait(ctx, stop, n, match)
	if err != nil {
		extra := ""
		if watch != nil {
			extra = fmt.Sprintf("\n%s stderr:\n%s", watch.name, watch.stderr.String())
		}
		t.Fatalf("waiting for %s in the server log: %v%s", what, err, extra)
	}
	return lines
}

// terminate sends SIGTERM and waits for the process to exit, which it must
// do with status 0.
func (s *evServer) terminate(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-s.done:
	case <-time.After(evExitLimit):
		t.Fatalf("server still running %v after SIGTERM", evExitLimit)
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("server exited with %v after SIGTERM, want status 0", s.cmd.ProcessState)
	}
}

// evFreePort returns a loopback port that was free a moment ago.
func evFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// evRefusingPort returns a loopback port that refuses connections until the
// test ends: a socket is bound to it but does not listen, so nothing else
// can take the port meanwhile.
func evRefusingPort(t *testing.T) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	syscall.CloseOnExec(fd)
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return sa.(*syscall.SockaddrInet4).Port
}

// evPeer is a running ffmpeg or ffprobe.
type evPeer struct {
	name   string
	cmd    *exec.Cmd
	stdout *evLog
	stderr *evLog
	done   chan struct{}
	err    error // Wait's result, set before done is closed
}

func startEvPeer(t *testing.T, name string, args ...string) *evPeer {
	t.Helper()
	p := &evPeer{name: name, stdout: newEvLog(), stderr: newEvLog(), done: make(chan struct{})}
	p.cmd = exec.Command(testpeer.Need(t, name), args...)
	p.cmd.Stdout = p.stdout
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// exited reports whether the program has ended.
func (p *evPeer) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits for the program to end and returns its error.
func (p *evPeer) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("%s still running after %v; stderr:\n%s", p.name, timeout, p.stderr.String())
		return nil
	}
}

// publishEvFFmpeg publishes generated H.264 and AAC to url, until killed
// or for as long as extra says (-t).
func publishEvFFmpeg(t *testing.T, url string, extra ...string) *evPeer {
	t.Helper()
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "64k"}
	args = append(args, extra...)
	return startEvPeer(t, "ffmpeg", append(args, "-f", "flv", url)...)
}

// evPublish connects to channel with the Go client and publishes key. The
// connection is returned whenever it was made, for the caller to close.
func evPublish(addr, channel, key string) (*client.Conn, client.Status, error) {
	c, err := client.Dial(addr, nil, 10*time.Second)
	if err != nil {
		return nil, client.Status{}, err
	}
	_ = c.SetDeadline(time.Now().Add(evWaitLimit))
	if err := c.Connect(channel); err != nil {
		return c, client.Status{}, fmt.Errorf("connect: %w", err)
	}
	if _, err := c.CreateStream(); err != nil {
		return c, client.Status{}, fmt.Errorf("createStream: %w", err)
	}
	st, err := c.Publish(key)
	return c, st, err
}

// evPlayMedia plays channel/key with the Go client until a video message
// arrives.
func evPlayMedia(t *testing.T, addr, channel, key string) {
	t.Helper()
	c, err := client.Dial(addr, nil, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(evWaitLimit))
	if err := c.Connect(channel); err != nil {
		t.Fatalf("player connect: %v", err)
	}
	if _, err := c.CreateStream(); err != nil {
		t.Fatalf("player createStream: %v", err)
	}
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
