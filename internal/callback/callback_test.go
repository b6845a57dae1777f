package callback

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

const (
	testSecret = "s3cr3t-signing-key"
	testKey    = "k3y-of-the-stream"
	testHost   = "rtmp.example.test"
	testPort   = 1935

	waitLimit = 10 * time.Second
)

// syncBuffer collects output written from several goroutines.
type syncBuffer = testpeer.Buffer

// waitFor polls cond until it holds or waitLimit passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testpeer.WaitFor(t, what, waitLimit, cond)
}

// received is one verified request seen by the callback server.
type received struct {
	claims jwt.MapClaims
}

func (r received) event() string       { return r.str("event") }
func (r received) str(k string) string { s, _ := r.claims[k].(string); return s }

// responder answers a verified event; n counts the events of that name so far,
// starting at 1.
type responder func(w http.ResponseWriter, r *http.Request, ev received, n int)

// approve accepts every start with stream id "sid-<channel>" and every stop.
func approve(w http.ResponseWriter, _ *http.Request, ev received, _ int) {
	if ev.event() == EventStart {
		w.Header().Set(StreamIDHeader, "sid-"+ev.str("channel"))
	}
	w.WriteHeader(http.StatusOK)
}

// callbackServer is a real HTTP server that verifies every token the way a
// callback handler would, and records the events.
type callbackServer struct {
	addr     string // written only by the test goroutine
	newConns atomic.Int32

	mu       sync.Mutex
	subject  string       // guarded by mu: the sub claim expected
	respond  responder    // guarded by mu
	srv      *http.Server // guarded by mu
	events   []received   // guarded by mu
	counts   map[string]int
	failures []string // guarded by mu: requests that did not verify
}

func newCallbackServer(t *testing.T, respond responder) *callbackServer {
	t.Helper()
	s := &callbackServer{subject: DefaultSubject, respond: respond, counts: map[string]int{}}
	s.listen(t, "127.0.0.1:0")
	t.Cleanup(func() {
		s.down()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, f := range s.failures {
			t.Errorf("callback server rejected a request: %s", f)
		}
	})
	return s
}

func (s *callbackServer) setRespond(r responder) {
	s.mu.Lock()
	s.respond = r
	s.mu.Unlock()
}

func (s *callbackServer) setSubject(sub string) {
	s.mu.Lock()
	s.subject = sub
	s.mu.Unlock()
}

func (s *callbackServer) url() string { return "http://" + s.addr + "/rtmp/event" }

// listen serves on addr; after down, pass s.addr to come back on the same one.
func (s *callbackServer) listen(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	s.addr = ln.Addr().String()
	srv := &http.Server{
		Handler: http.HandlerFunc(s.serveHTTP),
		ConnState: func(_ net.Conn, state http.ConnState) {
			if state == http.StateNew {
				s.newConns.Add(1)
			}
		},
	}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// down closes the listener and every connection.
func (s *callbackServer) down() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

func (s *callbackServer) fail(w http.ResponseWriter, format string, args ...any) {
	s.mu.Lock()
	s.failures = append(s.failures, fmt.Sprintf(format, args...))
	s.mu.Unlock()
	http.Error(w, "bad event", http.StatusBadRequest)
}

func (s *callbackServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost || len(body) != 0 {
		s.fail(w, "method %s with %d body bytes", r.Method, len(body))
		return
	}
	token, err := jwt.Parse(r.Header.Get(EventHeader),
		func(*jwt.Token) (any, error) { return []byte(testSecret), nil },
		jwt.WithValidMethods([]string{"HS256"}),
		jwt.WithExpirationRequired(),
	)
	if err != nil {
		s.fail(w, "token: %v", err)
		return
	}
	claims := token.Claims.(jwt.MapClaims)
	ev := received{claims: claims}
	want := []string{"sub", "event", "channel", "key", "client_ip", "rtmp_host", "rtmp_port", "exp"}
	switch ev.event() {
	case EventStart:
	case EventStop:
		want = append(want, "stream_id")
	default:
		s.fail(w, "event claim %v", claims["event"])
		return
	}
	if len(claims) != len(want) {
		s.fail(w, "claims %v, want exactly %v", claims, want)
		return
	}
	for _, k := range want {
		if _, ok := claims[k]; !ok {
			s.fail(w, "claim %s missing from %v", k, claims)
			return
		}
	}
	for _, k := range []string{"sub", "channel", "key", "client_ip", "rtmp_host"} {
		if _, ok := claims[k].(string); !ok {
			s.fail(w, "claim %s = %#v, want a string", k, claims[k])
			return
		}
	}
	if ev.event() == EventStop {
		if _, ok := claims["stream_id"].(string); !ok {
			s.fail(w, "claim stream_id = %#v, want a string", claims["stream_id"])
			return
		}
	}
	s.mu.Lock()
	subject, respond := s.subject, s.respond
	s.mu.Unlock()
	if got := ev.str("sub"); got != subject {
		s.fail(w, "sub = %q, want %q", got, subject)
		return
	}
	if got := ev.str("rtmp_host"); got != testHost {
		s.fail(w, "rtmp_host = %q, want %q", got, testHost)
		return
	}
	if got, ok := claims["rtmp_port"].(float64); !ok || got != testPort {
		s.fail(w, "rtmp_port = %#v, want the number %d", claims["rtmp_port"], testPort)
		return
	}
	exp, _ := claims.GetExpirationTime()
	if until := time.Until(exp.Time); until <= 0 || until > TokenLifetime+time.Second {
		s.fail(w, "exp %v is not within TokenLifetime from now", exp.Time)
		return
	}

	s.mu.Lock()
	s.events = append(s.events, ev)
	s.counts[ev.event()]++
	n := s.counts[ev.event()]
	s.mu.Unlock()
	respond(w, r, ev, n)
}

// seen returns the verified events of the given name, in arrival order.
func (s *callbackServer) seen(event string) []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []received
	for _, ev := range s.events {
		if ev.event() == event {
			out = append(out, ev)
		}
	}
	return out
}

// newTestClient returns a client for url with short stop backoff, its log
// buffer, and a check at cleanup that no secret reached the log.
func newTestClient(t *testing.T, url string, timeout time.Duration) (*Client, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := New(Config{URL: url, Secret: testSecret, Host: testHost, Port: testPort, Timeout: timeout}, logger)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	c.retryInitial = 5 * time.Millisecond
	c.retryMax = 20 * time.Millisecond
	c.retryWindow = waitLimit
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		out := logs.String()
		for _, secret := range []string{testSecret, testKey} {
			if strings.Contains(out, secret) {
				t.Errorf("log contains secret %q:\n%s", secret, out)
			}
		}
	})
	return c, logs
}

func testEvent(channel string) Event {
	return Event{Channel: channel, Key: testKey, ClientIP: "192.0.2.7", Session: 42}
}

// blockUntilEnd returns a channel closed at the end of the test; register it
// after the server so blocked handlers are released before the server closes.
func blockUntilEnd(t *testing.T) <-chan struct{} {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	return release
}

func TestStartApproved(t *testing.T) {
	srv := newCallbackServer(t, approve)
	c, _ := newTestClient(t, srv.url(), waitLimit)

	id, err := c.Start(context.Background(), testEvent("chan_1"))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if id != "sid-chan_1" {
		t.Errorf("stream id = %q, want %q", id, "sid-chan_1")
	}
	starts := srv.seen(EventStart)
	if len(starts) != 1 {
		t.Fatalf("server saw %d start events, want 1", len(starts))
	}
	want := map[string]string{"channel": "chan_1", "key": testKey, "client_ip": "192.0.2.7"}
	for k, v := range want {
		if got := starts[0].str(k); got != v {
			t.Errorf("claim %s = %q, want %q", k, got, v)
		}
	}
}

func TestStartCustomSubject(t *testing.T) {
	srv := newCallbackServer(t, approve)
	srv.setSubject("custom_subject")
	c, _ := newTestClient(t, srv.url(), waitLimit)
	cfg := mustConfig(t, c)
	cfg.Subject = "custom_subject"
	if err := c.SetConfig(cfg); err != nil {
		t.Fatalf("SetConfig: %v", err)
	}
	if _, err := c.Start(context.Background(), testEvent("ch")); err != nil {
		t.Fatalf("Start: %v", err)
	}
}

func TestStartRefused(t *testing.T) {
	tests := []struct {
		name    string
		respond responder
		want    error
		detail  string
	}{
		{
			name: "forbidden",
			respond: func(w http.ResponseWriter, _ *http.Request, _ received, _ int) {
				w.WriteHeader(http.StatusForbidden)
			},
			want:   ErrDenied,
			detail: "status 403",
		},
		{
			name: "server error",
			respond: func(w http.ResponseWriter, _ *http.Request, _ received, _ int) {
				w.Header().Set(StreamIDHeader, "ignored")
				w.WriteHeader(http.StatusInternalServerError)
			},
			want:   ErrDenied,
			detail: "status 500",
		},
		{
			name: "redirect is not followed",
			respond: func(w http.ResponseWriter, r *http.Request, _ received, _ int) {
				http.Redirect(w, r, "/elsewhere", http.StatusFound)
			},
			want:   ErrDenied,
			detail: "status 302",
		},
		{
			name: "200 without stream id",
			respond: func(w http.ResponseWriter, _ *http.Request, _ received, _ int) {
				_, _ = io.WriteString(w, "ok")
			},
			want:   ErrNoStreamID,
			detail: "stream-id",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newCallbackServer(t, tt.respond)
			c, _ := newTestClient(t, srv.url(), waitLimit)
			id, err := c.Start(context.Background(), testEvent("ch"))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Start = %q, %v; want %v", id, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.detail) {
				t.Errorf("error %q does not say %q", err, tt.detail)
			}
			if id != "" {
				t.Errorf("stream id %q returned with an error", id)
			}
		})
	}
}

func TestStartTimeout(t *testing.T) {
	srv := newCallbackServer(t, nil)
	release := blockUntilEnd(t)
	srv.setRespond(func(w http.ResponseWriter, r *http.Request, _ received, _ int) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	c, _ := newTestClient(t, srv.url(), 100*time.Millisecond)

	_, err := c.Start(context.Background(), testEvent("ch"))
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Start error = %v, want ErrTimeout", err)
	}
}

func TestStartCanceled(t *testing.T) {
	srv := newCallbackServer(t, nil)
	release := blockUntilEnd(t)
	arrived := make(chan struct{})
	srv.setRespond(func(w http.ResponseWriter, r *http.Request, _ received, _ int) {
		close(arrived)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	c, _ := newTestClient(t, srv.url(), waitLimit)

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-arrived
		cancel()
	}()
	_, err := c.Start(ctx, testEvent("ch"))
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) || errors.Is(err, ErrUnreachable) {
		t.Fatalf("Start error = %v, want only context.Canceled", err)
	}
}

func TestStartUnreachable(t *testing.T) {
	addr := testpeer.RefusingAddr(t)
	c, _ := newTestClient(t, "http://"+addr+"/", waitLimit)

	_, err := c.Start(context.Background(), testEvent("ch"))
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Start error = %v, want ErrUnreachable", err)
	}
	if !strings.Contains(err.Error(), "refused") {
		t.Errorf("error %q does not say the connection was refused", err)
	}
}

func TestStartTLSFailureIsUnreachable(t *testing.T) {
	// The client does not trust the test server's self-signed certificate.
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set(StreamIDHeader, "sid")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshake is expected
	t.Cleanup(srv.Close)
	c, _ := newTestClient(t, srv.URL, waitLimit)

	_, err := c.Start(context.Background(), testEvent("ch"))
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Start error = %v, want ErrUnreachable", err)
	}
	if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("error %q does not name the certificate problem", err)
	}
}

func TestStartReusesConnection(t *testing.T) {
	srv := newCallbackServer(t, approve)
	c, _ := newTestClient(t, srv.url(), waitLimit)

	for i := range 5 {
		if _, err := c.Start(context.Background(), testEvent(fmt.Sprintf("ch%d", i))); err != nil {
			t.Fatalf("Start %d: %v", i, err)
		}
	}
	if n := srv.newConns.Load(); n != 1 {
		t.Errorf("5 sequential starts opened %d connections, want 1", n)
	}
}

func TestStartDrainsResponseBody(t *testing.T) {
	srv := newCallbackServer(t, func(w http.ResponseWriter, _ *http.Request, _ received, _ int) {
		w.Header().Set(StreamIDHeader, "sid")
		_, _ = w.Write(bytes.Repeat([]byte("x"), 10<<10))
	})
	c, _ := newTestClient(t, srv.url(), waitLimit)

	const starts = 10
	for i := range starts {
		if _, err := c.Start(context.Background(), testEvent(fmt.Sprintf("ch%d", i))); err != nil {
			t.Fatalf("Start %d: %v", i, err)
		}
	}
	// An undrained body would cost every request its connection. Drained,
	// connections are reused, though net/http returns one to the pool just
	// after the body's EOF, so a request may occasionally dial anew.
	if n := srv.newConns.Load(); n >= starts {
		t.Errorf("%d sequential starts opened %d connections: bodies are not drained", starts, n)
	}
}

func TestSlowStartDoesNotDelayOthers(t *testing.T) {
	srv := newCallbackServer(t, nil)
	release := blockUntilEnd(t)
	slowArrived := make(chan struct{})
	srv.setRespond(func(w http.ResponseWriter, r *http.Request, ev received, n int) {
		if ev.str("channel") == "slow" {
			close(slowArrived)
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		approve(w, r, ev, n)
	})
	c, _ := newTestClient(t, srv.url(), waitLimit)

	type result struct {
		id  string
		err error
	}
	slowDone := make(chan result, 1)
	go func() {
		id, err := c.Start(context.Background(), testEvent("slow"))
		slowDone <- result{id, err}
	}()
	select {
	case <-slowArrived:
	case <-time.After(waitLimit):
		t.Fatal("slow start never reached the server")
	}

	id, err := c.Start(context.Background(), testEvent("fast"))
	if err != nil || id != "sid-fast" {
		t.Fatalf("fast Start = %q, %v", id, err)
	}
	select {
	case r := <-slowDone:
		t.Fatalf("slow Start returned (%q, %v) before its server answered", r.id, r.err)
	default:
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	good := Config{URL: "https://cb.example.test/x", Secret: testSecret}
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"empty url", func(c *Config) { c.URL = "" }},
		{"relative url", func(c *Config) { c.URL = "/rtmp/event" }},
		{"other scheme", func(c *Config) { c.URL = "ftp://cb.example.test/" }},
		{"no host", func(c *Config) { c.URL = "http:///path" }},
		{"unparsable", func(c *Config) { c.URL = "http://[::1" }},
		{"empty secret", func(c *Config) { c.Secret = "" }},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.edit(&cfg)
			if _, err := New(cfg, nil); err == nil {
				t.Fatalf("New(%+v) succeeded", cfg)
			} else if strings.Contains(err.Error(), testSecret) {
				t.Errorf("error %q contains the secret", err)
			}
		})
	}

	cfg := good
	cfg.URL = "ftp://user:hunter2@cb.example.test/"
	if _, err := New(cfg, nil); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("New with a password in the URL: %v", err)
	}

	c, err := New(good, nil)
	if err != nil {
		t.Fatalf("New(good): %v", err)
	}
	if got := mustConfig(t, c); got.Subject != DefaultSubject || got.Timeout != DefaultTimeout {
		t.Errorf("defaults: subject %q timeout %v", got.Subject, got.Timeout)
	}
	bad := good
	bad.Secret = ""
	if err := c.SetConfig(bad); err == nil {
		t.Error("SetConfig accepted an empty secret")
	}
	if got := mustConfig(t, c); got.Secret != testSecret {
		t.Error("a rejected SetConfig changed the configuration")
	}
}

func TestSetConfigAppliesToNextEvent(t *testing.T) {
	srv := newCallbackServer(t, approve)
	c, _ := newTestClient(t, srv.url(), waitLimit)

	wrong := mustConfig(t, c)
	wrong.Secret = "not-the-secret"
	if err := c.SetConfig(wrong); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	srv.failures = nil
	srv.mu.Unlock()
	if _, err := c.Start(context.Background(), testEvent("ch")); !errors.Is(err, ErrDenied) {
		t.Fatalf("Start with the wrong secret = %v, want ErrDenied", err)
	}
	srv.mu.Lock()
	rejected := len(srv.failures)
	srv.failures = nil // expected: the server refused the bad signature
	srv.mu.Unlock()
	if rejected != 1 {
		t.Fatalf("server rejected %d requests, want 1", rejected)
	}

	right := wrong
	right.Secret = testSecret
	if err := c.SetConfig(right); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(context.Background(), testEvent("ch")); err != nil {
		t.Fatalf("Start after SetConfig: %v", err)
	}
}

func stopEvent(channel, streamID string) Event {
	ev := testEvent(channel)
	ev.StreamID = streamID
	return ev
}

func TestStopDeliveredOnce(t *testing.T) {
	srv := newCallbackServer(t, approve)
	c, _ := newTestClient(t, srv.url(), waitLimit)

	c.Stop(stopEvent("ch", "stream-77"))
	waitFor(t, "the stop event to be delivered", func() bool { return c.Pending() == 0 })
	if err := c.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}

	stops := srv.seen(EventStop)
	if len(stops) != 1 {
		t.Fatalf("server saw %d stop events, want exactly 1", len(stops))
	}
	for k, want := range map[string]string{"stream_id": "stream-77", "channel": "ch", "key": testKey, "client_ip": "192.0.2.7"} {
		if got := stops[0].str(k); got != want {
			t.Errorf("claim %s = %q, want %q", k, got, want)
		}
	}
}

func TestStopRetriedAfterServerErrors(t *testing.T) {
	srv := newCallbackServer(t, func(w http.ResponseWriter, r *http.Request, ev received, n int) {
		if ev.event() == EventStop && n <= 2 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		approve(w, r, ev, n)
	})
	c, logs := newTestClient(t, srv.url(), waitLimit)

	c.Stop(stopEvent("ch", "stream-9"))
	waitFor(t, "the stop event to be delivered", func() bool { return c.Pending() == 0 })

	stops := srv.seen(EventStop)
	if len(stops) != 3 {
		t.Fatalf("server saw %d stop attempts, want 3 (two refused, one accepted)", len(stops))
	}
	for i, s := range stops {
		if got := s.str("stream_id"); got != "stream-9" {
			t.Errorf("attempt %d: stream_id = %q", i+1, got)
		}
	}
	out := logs.String()
	if n := strings.Count(out, "callback stop failed, retrying"); n != 2 {
		t.Errorf("log has %d retry lines, want 2:\n%s", n, out)
	}
	if !strings.Contains(out, "callback stop delivered") || !strings.Contains(out, "attempts=3") {
		t.Errorf("log does not record delivery after 3 attempts:\n%s", out)
	}
}

func TestStopRetriedWhileServerDown(t *testing.T) {
	srv := newCallbackServer(t, approve)
	c, logs := newTestClient(t, srv.url(), waitLimit)
	srv.down()

	c.Stop(stopEvent("ch", "stream-5"))
	waitFor(t, "a failed stop attempt", func() bool {
		return strings.Contains(logs.String(), "callback stop failed, retrying")
	})
	if n := len(srv.seen(EventStop)); n != 0 {
		t.Fatalf("server is down but saw %d stops", n)
	}

	srv.listen(t, srv.addr)
	waitFor(t, "the stop event to be delivered", func() bool { return c.Pending() == 0 })
	stops := srv.seen(EventStop)
	if len(stops) != 1 || stops[0].str("stream_id") != "stream-5" {
		t.Fatalf("server saw stops %v, want one for stream-5", stops)
	}
	if !strings.Contains(logs.String(), "callback stop delivered") {
		t.Errorf("log does not record the delivery:\n%s", logs)
	}
}

func TestStopLostAfterRetryWindow(t *testing.T) {
	srv := newCallbackServer(t, func(w http.ResponseWriter, _ *http.Request, _ received, _ int) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	c, logs := newTestClient(t, srv.url(), waitLimit)
	c.retryWindow = 30 * time.Millisecond

	c.Stop(stopEvent("ch_lost", "stream-lost"))
	waitFor(t, "the stop event to be given up", func() bool { return c.Pending() == 0 })

	var lost []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "callback stop lost") {
			lost = append(lost, line)
		}
	}
	if len(lost) != 1 {
		t.Fatalf("want one lost line, got %d:\n%s", len(lost), logs)
	}
	for _, attr := range []string{"channel=ch_lost", "stream_id=stream-lost", "status 503"} {
		if !strings.Contains(lost[0], attr) {
			t.Errorf("lost line lacks %q: %s", attr, lost[0])
		}
	}
}

func TestCloseWaitsForPendingStops(t *testing.T) {
	srv := newCallbackServer(t, nil)
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	srv.setRespond(func(w http.ResponseWriter, r *http.Request, ev received, n int) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		approve(w, r, ev, n)
	})
	c, _ := newTestClient(t, srv.url(), waitLimit)

	c.Stop(stopEvent("ch", "stream-1"))
	select {
	case <-arrived:
	case <-time.After(waitLimit):
		t.Fatal("stop never reached the server")
	}
	if got := c.Pending(); got != 1 {
		t.Errorf("Pending = %d while the stop is in flight, want 1", got)
	}

	closed := make(chan error, 1)
	go func() { closed <- c.Close(context.Background()) }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned %v while a stop was in flight", err)
	default:
	}
	close(release)
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Close did not return after the stop was delivered")
	}
	if got := c.Pending(); got != 0 {
		t.Errorf("Pending = %d after Close, want 0", got)
	}
	if n := len(srv.seen(EventStop)); n != 1 {
		t.Errorf("server saw %d stops, want 1", n)
	}
}

func TestCloseGivesUpWhenContextEnds(t *testing.T) {
	srv := newCallbackServer(t, nil)
	release := blockUntilEnd(t)
	arrived := make(chan struct{}, 1)
	srv.setRespond(func(w http.ResponseWriter, r *http.Request, _ received, _ int) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	c, logs := newTestClient(t, srv.url(), waitLimit)

	c.Stop(stopEvent("ch_hang", "stream-hang"))
	<-arrived
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close = %v, want context.Canceled", err)
	}
	if got := c.Pending(); got != 0 {
		t.Errorf("Pending = %d after Close gave up, want 0", got)
	}
	out := logs.String()
	if !strings.Contains(out, "callback stop lost") || !strings.Contains(out, "stream_id=stream-hang") {
		t.Errorf("log does not report the lost stop:\n%s", out)
	}

	c.Stop(stopEvent("ch_late", "stream-late"))
	if got := c.Pending(); got != 0 {
		t.Errorf("Stop after Close queued an event (Pending = %d)", got)
	}
	if !strings.Contains(logs.String(), "callback stop dropped: client closed") {
		t.Errorf("log does not report the dropped stop:\n%s", logs)
	}
}

// TestStopRetriesFollowDisableAndSetConfig: stops that began under one
// configuration wait while callbacks are off, and are sent at once with the
// configuration a later SetConfig brings, not with the one they began under.
func TestStopRetriesFollowDisableAndSetConfig(t *testing.T) {
	failing := newCallbackServer(t, func(w http.ResponseWriter, r *http.Request, ev received, n int) {
		if ev.event() == EventStop {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		approve(w, r, ev, n)
	})
	working := newCallbackServer(t, approve)
	c, _ := newTestClient(t, failing.url(), waitLimit)
	// Without the wake-up on SetConfig the second attempt would come a
	// minute later, past waitLimit.
	c.retryInitial = time.Minute
	c.retryMax = time.Minute
	c.retryWindow = 2 * time.Minute

	ids := []string{"stream-1", "stream-2", "stream-3"}
	for _, id := range ids {
		c.Stop(stopEvent("ch", id))
	}
	waitFor(t, "the first attempts, refused", func() bool { return len(failing.seen(EventStop)) == len(ids) })

	cfg := mustConfig(t, c)
	c.Disable()
	if _, err := c.Start(context.Background(), testEvent("ch")); !errors.Is(err, ErrDisabled) {
		t.Fatalf("Start while disabled = %v, want ErrDisabled", err)
	}
	if got := c.Pending(); got != len(ids) {
		t.Fatalf("%d stops pending while disabled, want %d", got, len(ids))
	}

	cfg.URL = working.url()
	if err := c.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stops delivered with the new settings", func() bool { return c.Pending() == 0 })
	var got []string
	for _, s := range working.seen(EventStop) {
		got = append(got, s.str("stream_id"))
	}
	slices.Sort(got)
	if !slices.Equal(got, ids) {
		t.Fatalf("new server got stops %v, want %v", got, ids)
	}
	if n := len(failing.seen(EventStop)); n != len(ids) {
		t.Errorf("old server saw %d stop attempts, want only the %d first ones", n, len(ids))
	}
}

// TestStopLostWhileDisabled: a stop held while callbacks are off is lost,
// and logged, when its retry window ends.
func TestStopLostWhileDisabled(t *testing.T) {
	srv := newCallbackServer(t, approve)
	c, logs := newTestClient(t, srv.url(), waitLimit)
	c.retryWindow = 50 * time.Millisecond
	c.Disable()

	c.Stop(stopEvent("ch_off", "stream-off"))
	waitFor(t, "the stop event to be given up", func() bool { return c.Pending() == 0 })
	if n := len(srv.seen(EventStop)); n != 0 {
		t.Fatalf("server saw %d stops while callbacks were off", n)
	}
	out := logs.String()
	if !strings.Contains(out, "callback stop lost: retry window over") || !strings.Contains(out, "callbacks are turned off") {
		t.Fatalf("log does not record the stop lost while callbacks were off:\n%s", out)
	}
}

// mustConfig is c.config; an error fails the test.
func mustConfig(t *testing.T, c *Client) Config {
	t.Helper()
	cfg, _, err := c.config()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
