package control

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtmp-server/rtmp-server/internal/logging"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

const (
	testChannel  = "rtmp_commands"
	testPassword = "redis-pa55word"
	waitLimit    = 10 * time.Second
)

// call is one Target method call.
type call struct {
	method   string
	channel  string
	streamID string
}

// fakeTarget holds a fixed set of streams and reports every call.
type fakeTarget struct {
	held  map[string]string // channel -> stream id; immutable
	calls chan call
}

func newFakeTarget(held map[string]string) *fakeTarget {
	return &fakeTarget{held: held, calls: make(chan call, 100)}
}

func (f *fakeTarget) KillSession(channel string) (bool, int) {
	f.calls <- call{method: "KillSession", channel: channel}
	_, ok := f.held[channel]
	return ok, 0
}

func (f *fakeTarget) CloseStream(channel, streamID string) (bool, int) {
	f.calls <- call{method: "CloseStream", channel: channel, streamID: streamID}
	id, ok := f.held[channel]
	return ok && id == streamID, 0
}

// next returns the next call, failing the test if none comes.
func (f *fakeTarget) next(t *testing.T) call {
	t.Helper()
	select {
	case c := <-f.calls:
		return c
	case <-time.After(waitLimit):
		t.Fatal("no command reached the target")
		return call{}
	}
}

// none checks that no call is queued.
func (f *fakeTarget) none(t *testing.T) {
	t.Helper()
	select {
	case c := <-f.calls:
		t.Fatalf("unexpected call %+v", c)
	default:
	}
}

// syncBuffer collects log output written from several goroutines.
type syncBuffer = testpeer.Buffer

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testpeer.WaitFor(t, what, waitLimit, cond)
}

// runSubscriber runs s until the end of the test, with short timings, and
// checks then that Run returned nil and the password never reached the log.
func runSubscriber(t *testing.T, s *Subscriber) *syncBuffer {
	t.Helper()
	logs := &syncBuffer{}
	s.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s.minBackoff = 5 * time.Millisecond
	s.maxBackoff = 20 * time.Millisecond
	s.healthInterval = 100 * time.Millisecond
	if s.Channel == "" {
		s.Channel = testChannel
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after cancel, want nil", err)
			}
		case <-time.After(waitLimit):
			t.Error("Run did not return after cancel")
		}
		if s.Connected() {
			t.Error("Connected() is true after Run returned")
		}
		if strings.Contains(logs.String(), testPassword) {
			t.Errorf("log contains the password:\n%s", logs)
		}
	})
	return logs
}

// publish sends msg on the test channel and returns how many subscribers got it.
func publish(t *testing.T, r *testpeer.Redis, msg string) int64 {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), Password: r.Password(), Protocol: 2})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	n, err := c.Publish(ctx, testChannel, msg).Result()
	if err != nil {
		t.Fatalf("PUBLISH %q: %v", msg, err)
	}
	return n
}

// mustDeliver publishes msg and checks the subscriber received it.
func mustDeliver(t *testing.T, r *testpeer.Redis, msg string) {
	t.Helper()
	if n := publish(t, r, msg); n != 1 {
		t.Fatalf("PUBLISH %q reached %d subscribers, want 1", msg, n)
	}
}

func connected(t *testing.T, s *Subscriber) {
	t.Helper()
	waitFor(t, "the subscription", s.Connected)
}

func TestKillSession(t *testing.T) {
	r := testpeer.StartRedis(t)
	target := newFakeTarget(map[string]string{"live_1": "stream-a"})
	s := &Subscriber{Addr: r.Addr(), Target: target}
	logs := runSubscriber(t, s)
	connected(t, s)

	mustDeliver(t, r, "kill-session>live_1")
	if got, want := target.next(t), (call{method: "KillSession", channel: "live_1"}); got != want {
		t.Errorf("call = %+v, want %+v", got, want)
	}
	mustDeliver(t, r, "kill-session>elsewhere\r\n")
	if got, want := target.next(t), (call{method: "KillSession", channel: "elsewhere"}); got != want {
		t.Errorf("call = %+v, want %+v", got, want)
	}
	waitFor(t, "both outcomes in the log", func() bool { return logs.Count("control command") == 2 })
	out := logs.String()
	for _, want := range []string{
		"command=kill-session channel=live_1 outcome=acted",
		`command=kill-session channel=elsewhere outcome="not held by this server"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestCloseStream(t *testing.T) {
	r := testpeer.StartRedis(t)
	target := newFakeTarget(map[string]string{"live_1": "stream-a"})
	s := &Subscriber{Addr: r.Addr(), Target: target}
	logs := runSubscriber(t, s)
	connected(t, s)

	mustDeliver(t, r, "close-stream>live_1|stream-a")
	if got, want := target.next(t), (call{"CloseStream", "live_1", "stream-a"}); got != want {
		t.Errorf("call = %+v, want %+v", got, want)
	}
	mustDeliver(t, r, "close-stream>live_1|stream-old")
	if got, want := target.next(t), (call{"CloseStream", "live_1", "stream-old"}); got != want {
		t.Errorf("call = %+v, want %+v", got, want)
	}
	waitFor(t, "both outcomes in the log", func() bool { return logs.Count("control command") == 2 })
	out := logs.String()
	for _, want := range []string{
		"channel=live_1 outcome=acted stream_id=stream-a",
		`channel=live_1 outcome="not held by this server" stream_id=stream-old`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestMalformedMessagesAreIgnored(t *testing.T) {
	r := testpeer.StartRedis(t)
	target := newFakeTarget(nil)
	s := &Subscriber{Addr: r.Addr(), Target: target}
	logs := runSubscriber(t, s)
	connected(t, s)

	bad := []string{
		"kill-session",
		"kill-session>",
		"reboot>now",
		"close-stream>ch",
		"kill-session>a|b",
		"\x1b[31mkill-session>\x00\xff",
		strings.Repeat("z", MaxMessageSize+1),
	}
	for _, msg := range bad {
		mustDeliver(t, r, msg)
	}
	mustDeliver(t, r, "kill-session>good")
	if got, want := target.next(t), (call{method: "KillSession", channel: "good"}); got != want {
		t.Fatalf("first call = %+v, want %+v (bad messages must not reach the target)", got, want)
	}
	target.none(t)

	waitFor(t, "the good command in the log", func() bool { return logs.Count("control command") == 1 })
	if n := logs.Count("control message ignored"); n != len(bad) {
		t.Errorf("log has %d ignored lines, want %d:\n%s", n, len(bad), logs)
	}
	out := logs.String()
	if strings.IndexByte(out, 0x00) >= 0 || strings.IndexByte(out, 0x1b) >= 0 || strings.IndexByte(out, 0xff) >= 0 || strings.Contains(out, strings.Repeat("z", logging.MaxQuoted+1)) {
		t.Errorf("log holds raw or overlong message bytes:\n%q", out)
	}
}

func TestPassword(t *testing.T) {
	r := testpeer.StartRedis(t, testpeer.WithRedisPassword(testPassword))

	t.Run("right", func(t *testing.T) {
		target := newFakeTarget(nil)
		s := &Subscriber{Addr: r.Addr(), Password: testPassword, Target: target}
		runSubscriber(t, s)
		connected(t, s)
		mustDeliver(t, r, "kill-session>ch")
		if got := target.next(t); got.channel != "ch" {
			t.Errorf("call = %+v", got)
		}
	})

	t.Run("wrong", func(t *testing.T) {
		s := &Subscriber{Addr: r.Addr(), Password: "not-it", Target: newFakeTarget(nil)}
		logs := runSubscriber(t, s)
		waitFor(t, "several failed attempts", func() bool { return s.failedAttempts.Load() >= 3 })
		if s.Connected() {
			t.Error("connected with the wrong password")
		}
		if n := logs.Count("redis unavailable"); n != 1 {
			t.Errorf("log has %d unavailable lines, want 1:\n%s", n, logs)
		}
		if out := logs.String(); !strings.Contains(out, "WRONGPASS") || strings.Contains(out, "not-it") {
			t.Errorf("log should name the auth failure without the password:\n%s", out)
		}
	})
}

func TestRedisDownAtStart(t *testing.T) {
	r := testpeer.StartRedis(t)
	r.Stop()
	target := newFakeTarget(nil)
	s := &Subscriber{Addr: r.Addr(), Target: target}
	logs := runSubscriber(t, s)

	waitFor(t, "several failed attempts", func() bool { return s.failedAttempts.Load() >= 3 })
	if s.Connected() {
		t.Fatal("connected while Redis is down")
	}
	r.Restart()
	connected(t, s)
	mustDeliver(t, r, "kill-session>after_start")
	if got := target.next(t); got.channel != "after_start" {
		t.Errorf("call = %+v", got)
	}

	if n := logs.Count("redis unavailable"); n != 1 {
		t.Errorf("log has %d unavailable lines, want 1:\n%s", n, logs)
	}
	if n := logs.Count("redis connected and subscribed"); n != 1 {
		t.Errorf("log has %d connected lines, want 1:\n%s", n, logs)
	}
}

func TestRedisRestartedMidway(t *testing.T) {
	r := testpeer.StartRedis(t)
	target := newFakeTarget(nil)
	s := &Subscriber{Addr: r.Addr(), Target: target}
	logs := runSubscriber(t, s)
	connected(t, s)
	mustDeliver(t, r, "kill-session>before")
	if got := target.next(t); got.channel != "before" {
		t.Fatalf("call = %+v", got)
	}

	r.Stop()
	waitFor(t, "the loss to be noticed", func() bool { return !s.Connected() })
	failed := s.failedAttempts.Load()
	waitFor(t, "several failed reconnects", func() bool { return s.failedAttempts.Load() >= failed+3 })
	r.Restart()
	connected(t, s)
	mustDeliver(t, r, "close-stream>after|s2")
	if got, want := target.next(t), (call{"CloseStream", "after", "s2"}); got != want {
		t.Errorf("call = %+v, want %+v", got, want)
	}

	out := logs.String()
	if n := logs.Count("redis connection lost"); n != 1 {
		t.Errorf("log has %d lost lines, want 1:\n%s", n, out)
	}
	if n := logs.Count("redis connected and subscribed"); n != 2 {
		t.Errorf("log has %d connected lines, want 2:\n%s", n, out)
	}
	if n := logs.Count("redis unavailable"); n != 0 {
		t.Errorf("log has %d unavailable lines, want 0 (the outage is already logged as lost):\n%s", n, out)
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key, and
// returns their paths and a pool that trusts the certificate.
func writeCert(t *testing.T) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	pair := testpeer.SelfSigned(t, 1)
	certFile, keyFile = pair.WriteTemp(t)
	return certFile, keyFile, pair.Roots()
}

func TestTLS(t *testing.T) {
	certFile, keyFile, roots := writeCert(t)
	r := testpeer.StartRedis(t, testpeer.WithRedisTLS(certFile, keyFile))

	t.Run("trusted", func(t *testing.T) {
		target := newFakeTarget(nil)
		s := &Subscriber{Addr: r.Addr(), Target: target,
			TLSConfig: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}
		runSubscriber(t, s)
		connected(t, s)
		c := redis.NewClient(&redis.Options{Addr: r.Addr(), Protocol: 2,
			TLSConfig: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}})
		defer c.Close()
		if n, err := c.Publish(context.Background(), testChannel, "kill-session>over_tls").Result(); err != nil || n != 1 {
			t.Fatalf("PUBLISH over TLS = %d, %v", n, err)
		}
		if got := target.next(t); got.channel != "over_tls" {
			t.Errorf("call = %+v", got)
		}
	})

	t.Run("system roots do not trust a self-signed certificate", func(t *testing.T) {
		s := &Subscriber{Addr: r.Addr(), TLS: true, Target: newFakeTarget(nil)}
		logs := runSubscriber(t, s)
		waitFor(t, "a failed attempt", func() bool { return s.failedAttempts.Load() >= 1 })
		if s.Connected() {
			t.Error("connected to an untrusted server")
		}
		if out := logs.String(); !strings.Contains(out, "certificate") {
			t.Errorf("log does not name the certificate problem:\n%s", out)
		}
	})
}

func TestRunRejectsUnusableFields(t *testing.T) {
	tests := []struct {
		name string
		sub  *Subscriber
	}{
		{"no target", &Subscriber{Addr: "127.0.0.1:1", Channel: "c"}},
		{"no channel", &Subscriber{Addr: "127.0.0.1:1", Target: newFakeTarget(nil)}},
		{"address without port", &Subscriber{Addr: "127.0.0.1", Channel: "c", Target: newFakeTarget(nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.sub.Run(context.Background()); err == nil {
				t.Fatal("Run succeeded")
			}
		})
	}
}

func TestOutcome(t *testing.T) {
	tests := []struct {
		name    string
		live    bool
		pending int
		want    string
	}{
		{"nothing", false, 0, "not held by this server"},
		{"live", true, 0, "acted"},
		{"pending", false, 2, "applied to pending publish"},
		{"both", true, 1, "acted, and applied to pending publish"},
	}
	for _, tt := range tests {
		if got := outcome(tt.live, tt.pending); got != tt.want {
			t.Errorf("%s: outcome(%v, %d) = %q, want %q", tt.name, tt.live, tt.pending, got, tt.want)
		}
	}
}
