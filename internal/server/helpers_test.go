package server

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/client"
	"github.com/rtmp-server/rtmp-server/internal/message"
	"github.com/rtmp-server/rtmp-server/internal/servertest"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// testServer is a server on a loopback port with its log captured.
type testServer struct {
	*Server
	addr   string
	logs   *syncBuffer
	events *eventLog
}

// eventLog records what the server reports to its Observer.
type eventLog struct {
	mu     sync.Mutex
	events []Event // guarded by mu
}

func (l *eventLog) observe(ev Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, ev)
}

// matching returns the events recorded so far that match.
func (l *eventLog) matching(match func(Event) bool) []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Event
	for _, ev := range l.events {
		if match(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// wait waits until n events match and returns them.
func (l *eventLog) wait(t testing.TB, what string, n int, match func(Event) bool) []Event {
	t.Helper()
	var got []Event
	waitFor(t, what, time.Minute, func() bool {
		got = l.matching(match)
		return len(got) >= n
	})
	return got
}

// kind matches events of kind k whose reason contains reason.
func kind(k EventKind, reason string) func(Event) bool {
	return func(ev Event) bool { return ev.Kind == k && strings.Contains(ev.Reason, reason) }
}

// syncBuffer collects output written from several goroutines.
type syncBuffer = testpeer.Buffer

func startServer(t testing.TB, mod func(*Options), setup ...func(*Server)) *testServer {
	t.Helper()
	return startServerWrapped(t, nil, mod, setup...)
}

// startServerWrapped is startServer serving through wrap(listener), when wrap is set.
func startServerWrapped(t testing.TB, wrap func(net.Listener) net.Listener, mod func(*Options), setup ...func(*Server)) *testServer {
	t.Helper()
	cfg := DefaultOptions()
	cfg.MaxIPConnections = 0
	if mod != nil {
		mod(&cfg)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := mustNew(t, cfg, logger)
	events := &eventLog{}
	srv.Observer = Observers(RequestLog(logger, func() bool { return srv.Options().LogRequests }), events.observe)
	for _, f := range setup {
		f(srv)
	}
	// Registered before Serve, so it runs after the shutdown.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	ln := testpeer.Listen(t)
	served := ln
	if wrap != nil {
		served = wrap(ln)
	}
	servertest.Serve(t, srv, served, ErrServerClosed)
	return &testServer{Server: srv, addr: ln.Addr().String(), logs: logs, events: events}
}

// mustNew is New for tests: invalid options fail the test.
func mustNew(t testing.TB, opts Options, logger *slog.Logger) *Server {
	t.Helper()
	srv, err := New(opts, logger)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// mustSetOptions is SetOptions for tests.
func mustSetOptions(t testing.TB, srv *Server, opts Options) {
	t.Helper()
	if err := srv.SetOptions(opts); err != nil {
		t.Fatal(err)
	}
}

// dial connects a client and runs connect(app); it fails the test on error.
func (ts *testServer) dial(t testing.TB, app string) *client.Conn {
	t.Helper()
	c, err := servertest.DialStream(t, ts.addr, app)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	testpeer.WaitFor(t, what, timeout, cond)
}

// Synthetic FLV payloads.
var (
	videoHeader = []byte{0x17, 0x00, 0, 0, 0, 0x01, 0x64, 0x00, 0x1f}
	audioHeader = []byte{0xAF, 0x00, 0x12, 0x10}
)

func keyframe(n byte) []byte { return []byte{0x17, 0x01, 0, 0, 0, 'K', n} }
func interFrame(n byte) []byte {
	return []byte{0x27, 0x01, 0, 0, 0, 'P', n}
}
func audioFrame(n byte) []byte { return []byte{0xAF, 0x01, 'A', n} }

// isStreamData reports whether m is media or stream data (not the
// |RtmpSampleAccess notification).
func isStreamData(m *chunk.Message) bool {
	switch m.Type {
	case message.TypeAudio, message.TypeVideo:
		return true
	case message.TypeDataAMF0:
		return !bytes.Contains(m.Payload, []byte("|RtmpSampleAccess"))
	}
	return false
}

// readMedia reads until n media messages arrived (after any pending ones).
func readMedia(t testing.TB, c *client.Conn, n int) []*chunk.Message {
	t.Helper()
	var out []*chunk.Message
	for _, m := range c.Pending {
		if isStreamData(m) {
			out = append(out, m)
		}
	}
	c.Pending = nil
	for len(out) < n {
		m, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("reading media (have %d of %d): %v", len(out), n, err)
		}
		if isStreamData(m) {
			out = append(out, m)
		}
	}
	return out
}

func expectStatus(t testing.TB, st client.Status, err error, code string) {
	t.Helper()
	if st.Code != code {
		t.Fatalf("status %q (err %v), want %q", st.Code, err, code)
	}
}
