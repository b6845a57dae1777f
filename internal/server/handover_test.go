package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtmp-server/rtmp-server/internal/amf"
	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/client"
	"github.com/rtmp-server/rtmp-server/internal/handover"
	"github.com/rtmp-server/rtmp-server/internal/hub"
	"github.com/rtmp-server/rtmp-server/internal/message"
	"github.com/rtmp-server/rtmp-server/internal/servertest"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// nextServer is the process after a hand-over: a second Server that
// adopts what the first handed over, as the next process would from
// systemd's file descriptor store (here the descriptors are duplicated in
// process).
type nextServer struct {
	*Server
	logs    *syncBuffer
	events  *eventLog
	resumed Resumed
	// savedMidMessage: a session was saved with a message in progress.
	savedMidMessage bool
}

// unreadBytes reports how many bytes wait in the kernel for the server's
// connections to read.
func (ts *testServer) unreadBytes() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	total := 0
	for c := range ts.conns {
		_ = c.raw.Control(func(fd uintptr) {
			n, err := unix.IoctlGetInt(int(fd), unix.SIOCINQ)
			if err == nil {
				total += n
			}
		})
	}
	return total
}

// handOver hands ts's sessions to a new server with the same options and
// authorizer and returns it, serving on a new listener.
func handOver(t *testing.T, ts *testServer, auth Authorizer, setup ...func(*Server)) *nextServer {
	t.Helper()
	ho, err := ts.HandOver(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	files := make([]*os.File, 0, len(ho.Files))
	for _, f := range ho.Files {
		fd, err := unix.Dup(int(f.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, os.NewFile(uintptr(fd), "rtmp-handover"))
	}
	logs := &syncBuffer{}
	next := &nextServer{logs: logs, events: &eventLog{}}
	next.Server = mustNew(t, ts.Options(), slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	next.Observer = next.events.observe
	if auth != nil {
		next.SetAuthorizer(auth)
	}
	for _, f := range setup {
		f(next.Server)
	}
	if saved, err := handover.Decode(bytes.NewReader(ho.State)); err == nil {
		for _, s := range saved.Sessions {
			for _, cs := range s.Protocol.In.Streams {
				next.savedMidMessage = next.savedMidMessage || len(cs.Partial) > 0
			}
		}
	}
	next.resumed = next.Adopt(bytes.NewReader(ho.State), files)
	ho.Done()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of the next server:\n%s", logs.String())
		}
	})
	servertest.Serve(t, next.Server, testpeer.Listen(t), ErrServerClosed)
	return next
}

// videoMessage is a video message of n bytes whose content tells it apart.
func videoMessage(ts uint32, n int, tag byte) *chunk.Message {
	p := bytes.Repeat([]byte{tag}, n)
	p[0], p[1] = 0x27, 0x01 // an inter frame
	return &chunk.Message{ChunkStreamID: message.CSIDVideo, Timestamp: ts, Type: message.TypeVideo, StreamID: 1, Payload: p}
}

// TestHandOverMidMessage hands over a publisher stopped in the middle of a
// message and a player: the publisher then sends the rest of the message
// and the next ones with compressed headers (type 3, type 1), the player
// gets them all on its same connection, the callback server hears no stop
// or start, and kill-session ends the resumed publisher.
func TestHandOverMidMessage(t *testing.T) {
	t.Parallel()
	auth := newRecordingAuthorizer()
	ts := startServer(t, nil, func(s *Server) { s.SetAuthorizer(auth) })
	pub := ts.dial(t, "live")
	st, err := pub.Publish("key")
	expectStatus(t, st, err, "NetStream.Publish.Start")
	player := ts.dial(t, "live")
	st, err = player.Play("key")
	expectStatus(t, st, err, "NetStream.Play.Start")

	if err := pub.WriteMedia(message.TypeVideo, 0, videoHeader); err != nil {
		t.Fatal(err)
	}
	if err := pub.WriteMedia(message.TypeVideo, 0, keyframe(1)); err != nil {
		t.Fatal(err)
	}
	readMedia(t, player, 2)

	// A 300-byte message in 128-byte chunks: type-0 header, then type 3.
	big := videoMessage(40, 300, 'B')
	wire := chunk.AppendMessage(nil, big, chunk.DefaultChunkSize)
	cut := 12 + 128 + 1 + 9 // in the payload of the second chunk
	if _, err := pub.NetConn().Write(wire[:cut]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the server to read the first part", 10*time.Second, func() bool { return ts.unreadBytes() == 0 })

	next := handOver(t, ts, auth)
	if !next.savedMidMessage {
		t.Fatal("the publisher's saved state has no message in progress")
	}
	if next.resumed.Sessions != 2 || next.resumed.Publishers != 1 || next.resumed.Players != 1 || next.resumed.Failed != 0 {
		t.Fatalf("resumed %+v, want 2 sessions, 1 publisher, 1 player", next.resumed)
	}

	// The rest, then a type-1 header (delta 40, 7 bytes) and a type-3 one
	// (a new message like it) on the same chunk stream.
	rest := wire[cut:]
	second := []byte{1<<6 | byte(message.CSIDVideo), 0, 0, 40, 0, 0, 7, message.TypeVideo, 0x27, 0x01, 0, 0, 0, 'P', 2}
	third := []byte{3<<6 | byte(message.CSIDVideo), 0x27, 0x01, 0, 0, 0, 'P', 3}
	if _, err := pub.NetConn().Write(bytes.Join([][]byte{rest, second, third}, nil)); err != nil {
		t.Fatal(err)
	}
	got := readMedia(t, player, 3)
	want := []struct {
		ts   uint32
		body []byte
	}{{40, big.Payload}, {80, interFrame(2)}, {120, interFrame(3)}}
	for i, w := range want {
		if got[i].Type != message.TypeVideo || got[i].Timestamp != w.ts || !bytes.Equal(got[i].Payload, w.body) {
			t.Fatalf("message %d: type %d at %d, %q; want video at %d, %q", i, got[i].Type, got[i].Timestamp, got[i].Payload, w.ts, w.body)
		}
	}
	if starts, stops, _ := auth.counts(); starts != 1 || stops != 0 {
		t.Fatalf("callback: %d starts, %d stops after the hand-over; want 1 and 0", starts, stops)
	}

	if live, _ := next.KillSession("live"); !live {
		t.Fatal("kill-session found no live publisher on the resumed server")
	}
	if err := pub.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := pub.ReadMessage(); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("publisher after kill-session: %v, want the connection closed", err)
			}
			break
		}
	}
	st, err = player.WaitStatus()
	expectStatus(t, st, err, "NetStream.Play.UnpublishNotify")
	waitFor(t, "the stop event", 10*time.Second, func() bool { _, stops, _ := auth.counts(); return stops == 1 })
	if err := auth.check(); err != nil {
		t.Fatal(err)
	}
}

// TestHandOverBadState: a state the next process cannot use closes the
// stored connections, logged, and the peers see the connection end.
func TestHandOverBadState(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	player := ts.dial(t, "live")
	st, err := player.Play("key")
	expectStatus(t, st, err, "NetStream.Play.Start")
	ho, err := ts.HandOver(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Dup(int(ho.Files[0].Fd()))
	if err != nil {
		t.Fatal(err)
	}
	ho.Done()
	logs := &syncBuffer{}
	next := mustNew(t, ts.Options(), slog.New(slog.NewTextHandler(logs, nil)))
	state := bytes.Replace(ho.State, []byte(`"version":1`), []byte(`"version":99`), 1)
	res := next.Adopt(bytes.NewReader(state), []*os.File{os.NewFile(uintptr(fd), "rtmp-handover")})
	if res.Sessions != 0 || res.Failed != 1 {
		t.Fatalf("resumed %+v, want none and 1 failed", res)
	}
	if !bytes.Contains([]byte(logs.String()), []byte("version 99")) {
		t.Errorf("log does not say why:\n%s", logs.String())
	}
	if err := player.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := player.ReadMessage(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("player: %v, want EOF", err)
			}
			break
		}
	}
	_ = next.Close()
}

// TestHandOverState checks what HandOver saves for each role.
func TestHandOverState(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	pub := ts.dial(t, "live")
	st, err := pub.Publish("key")
	expectStatus(t, st, err, "NetStream.Publish.Start")
	if err := pub.SetChunkSize(4096); err != nil {
		t.Fatal(err)
	}
	meta := message.DataValues(1, "@setDataFrame", "onMetaData", amf.Object{{Key: "width", Value: 320.0}})
	if err := pub.WriteMessage(meta.Chunk()); err != nil {
		t.Fatal(err)
	}
	if err := pub.WriteMedia(message.TypeVideo, 0, videoHeader); err != nil {
		t.Fatal(err)
	}
	player := ts.dial(t, "live")
	st, err = player.Play("key")
	expectStatus(t, st, err, "NetStream.Play.Start")
	readMedia(t, player, 2)
	idle := ts.dial(t, "other")
	_ = idle

	ho, err := ts.HandOver(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer ho.Done()
	saved, err := handover.Decode(bytes.NewReader(ho.State))
	if err != nil {
		t.Fatal(err)
	}
	if ho.Sessions != 3 || ho.Publishers != 1 || ho.Players != 1 || len(saved.Sessions) != 3 || len(ho.Files) != 3 {
		t.Fatalf("handed over %d sessions (%d publishers, %d players), %d saved, %d files; want 3, 1, 1", ho.Sessions, ho.Publishers, ho.Players, len(saved.Sessions), len(ho.Files))
	}
	var roles int
	for _, s := range saved.Sessions {
		switch {
		case s.Publisher != nil:
			roles |= 1
			if s.Protocol.In.ChunkSize != 4096 || s.Protocol.Publishing.Name != "key" || s.Protocol.App != "live" {
				t.Errorf("publisher state %+v", s.Protocol)
			}
		case s.Player != nil:
			roles |= 2
			if s.Player.ChunkSize != DefaultChunkSize || s.Protocol.Playing.Name != "key" {
				t.Errorf("player state %+v %+v", s.Player, s.Protocol)
			}
		default:
			roles |= 4
			if s.Protocol.App != "other" {
				t.Errorf("idle session state %+v", s.Protocol)
			}
		}
	}
	if roles != 7 {
		t.Errorf("roles saved: %b, want publisher, player and an idle session", roles)
	}
	if len(saved.Streams) != 1 || len(saved.Streams[0].Packets) != 2 || !saved.Streams[0].Packets[0].Metadata {
		t.Errorf("streams saved: %+v, want live with its metadata and video header", saved.Streams)
	}
}

// TestHandOverDualStack hands over a connection accepted on a dual-stack
// socket (as systemd's ListenStream=1935 is), whose addresses are
// IPv4-mapped: the next server still finds its state.
func TestHandOverDualStack(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "[::]:0")
	if err != nil {
		t.Skipf("no dual-stack socket here: %v", err)
	}
	ts := startServer(t, nil)
	servertest.Serve(t, ts.Server, ln, ErrServerClosed)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	player, err := servertest.DialStream(t, addr, "live")
	if err != nil {
		t.Fatal(err)
	}
	st, err := player.Play("key")
	expectStatus(t, st, err, "NetStream.Play.Start")
	next := handOver(t, ts, nil)
	if next.resumed.Sessions != 1 || next.resumed.Failed != 0 {
		t.Fatalf("resumed %+v, want the one session", next.resumed)
	}
}

// readUntilClosed reads c until the server closes it, and fails the test
// on anything but EOF.
func readUntilClosed(t *testing.T, what string, c interface {
	ReadMessage() (*chunk.Message, error)
	SetDeadline(time.Time) error
}) {
	t.Helper()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := c.ReadMessage()
		if err == nil {
			continue
		}
		if !errors.Is(err, io.EOF) {
			t.Fatalf("%s: %v, want the connection closed", what, err)
		}
		return
	}
}

// TestHandOverEndsWhatCannotGo: an RTMPS session and a connection still in
// its handshake are not handed over; they end as at a shutdown (an RTMPS
// publisher's stop event is sent, its player is told the stream ended).
func TestHandOverEndsWhatCannotGo(t *testing.T) {
	t.Parallel()
	auth := newRecordingAuthorizer()
	ts := startTLSServer(t)
	ts.SetAuthorizer(auth)
	tlsConfig := &tls.Config{InsecureSkipVerify: true}
	pub, err := client.Dial(ts.addr, tlsConfig, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.Connect("live"); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.CreateStream(); err != nil {
		t.Fatal(err)
	}
	st, err := pub.Publish("key")
	expectStatus(t, st, err, "NetStream.Publish.Start")
	half, err := tls.Dial("tcp", ts.addr, tlsConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	if _, err := half.Write([]byte{3}); err != nil { // C0 only
		t.Fatal(err)
	}

	ho, err := ts.HandOver(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ho.Done()
	if ho.Sessions != 0 || len(ho.Files) != 0 {
		t.Fatalf("handed over %d sessions, want none", ho.Sessions)
	}
	readUntilClosed(t, "RTMPS publisher", pub)
	if err := half.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	// As at a shutdown: closed (a reset, when the server had not read all
	// the peer sent), not left open.
	if _, err := io.ReadAll(half); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("connection in its handshake: %v, want it closed", err)
	}
	waitFor(t, "the stop event", 10*time.Second, func() bool { _, stops, _ := auth.counts(); return stops == 1 })
}

// forwardAuthorizer approves every publish with forward targets.
type forwardAuthorizer struct{ urls []string }

func (a forwardAuthorizer) Start(ctx context.Context, ev PublishEvent) (string, error) {
	return "fwd-id", nil
}
func (a forwardAuthorizer) Stop(PublishEvent) {}
func (a forwardAuthorizer) StartForwards(ctx context.Context, ev PublishEvent) (string, []string, error) {
	return "fwd-id", a.urls, nil
}

// recordingForwarder records the Forward calls.
type recordingForwarder struct {
	mu    sync.Mutex
	calls [][]string // guarded by mu: extra of each Forward
}

func (f *recordingForwarder) Forward(pub, replaced *hub.Publication, extra []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, extra)
}
func (f *recordingForwarder) Ended(*hub.Publication, bool) {}

// TestHandOverForwards: the next process forwards a resumed publication
// again, to the start callback's targets as well.
func TestHandOverForwards(t *testing.T) {
	t.Parallel()
	auth := forwardAuthorizer{urls: []string{"rtmp://target.example/app/k"}}
	ts := startServer(t, nil, func(s *Server) { s.SetAuthorizer(auth); s.Forwarder = &recordingForwarder{} })
	pub := ts.dial(t, "live")
	st, err := pub.Publish("key")
	expectStatus(t, st, err, "NetStream.Publish.Start")
	fwd := &recordingForwarder{}
	next := handOver(t, ts, auth, func(s *Server) { s.Forwarder = fwd })
	if next.resumed.Publishers != 1 {
		t.Fatalf("resumed %+v, want the publisher", next.resumed)
	}
	fwd.mu.Lock()
	defer fwd.mu.Unlock()
	if len(fwd.calls) != 1 || !slices.Equal(fwd.calls[0], auth.urls) {
		t.Fatalf("Forward calls %q, want one with %q", fwd.calls, auth.urls)
	}
}

// admitAll is an Admission that admits everything.
type admitAll struct{}

func (admitAll) Admit(context.Context, PublishEvent) (func(), error) { return func() {}, nil }

// carrier is a CarriedAdmission that records what it is asked.
type carrier struct {
	mu       sync.Mutex
	releases int      // guarded by mu: releases called
	carried  []string // guarded by mu: CarriedOver's publishes, as tokens
	taken    []string // guarded by mu: tokens given to TakeBack
	refuse   error    // TakeBack's error
}

func (a *carrier) release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.releases++
}

func (a *carrier) Admit(context.Context, PublishEvent) (func(), error) { return a.release, nil }

func (a *carrier) Token(ev PublishEvent) (string, bool) {
	return "claim|" + ev.Channel + "|" + ev.Key + "|" + ev.StreamID, true
}

func (a *carrier) CarriedOver(ev PublishEvent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	tok, _ := a.Token(ev)
	a.carried = append(a.carried, tok)
}

func (a *carrier) TakeBack(_ context.Context, ev PublishEvent, token string) (func(), error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.taken = append(a.taken, token)
	if token != "claim|"+ev.Channel+"|"+ev.Key+"|"+ev.StreamID {
		return nil, fmt.Errorf("token %q does not match the publish", token)
	}
	if a.refuse != nil {
		return nil, a.refuse
	}
	return a.release, nil
}

func (a *carrier) counts() (releases int, carried, taken []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.releases, slices.Clone(a.carried), slices.Clone(a.taken)
}

// TestHandOverRefusedWithAdmission: an Admission that cannot carry its
// admissions over (not a CarriedAdmission) keeps a server from handing
// over.
func TestHandOverRefusedWithAdmission(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil, func(s *Server) { s.Admission = admitAll{} })
	if _, err := ts.HandOver(context.Background()); !errors.Is(err, ErrHandOverAdmission) {
		t.Fatalf("HandOver = %v, want ErrHandOverAdmission", err)
	}
}

// TestHandOverCarriesAdmission: a CarriedAdmission's admission (a fleet's
// claim) goes with the publish to the next process, which takes it back;
// the old process does not release it, and the callback server hears no
// stop or start. When the next process cannot take it back, the publish
// ends there: its connection closes and its stop event is sent once.
func TestHandOverCarriesAdmission(t *testing.T) {
	t.Parallel()
	for _, refuse := range []bool{false, true} {
		auth := newRecordingAuthorizer()
		old := &carrier{}
		ts := startServer(t, nil, func(s *Server) { s.SetAuthorizer(auth); s.Admission = old })
		pub := ts.dial(t, "live")
		st, err := pub.Publish("key")
		expectStatus(t, st, err, "NetStream.Publish.Start")
		next := &carrier{}
		if refuse {
			next.refuse = errors.New("channel claimed by box-b during the hand-over")
		}
		nextSrv := handOver(t, ts, auth, func(s *Server) { s.Admission = next })
		if err := ts.Shutdown(context.Background()); err != nil && !errors.Is(err, ErrServerClosed) {
			t.Fatal(err)
		}
		oldReleases, carried, _ := old.counts()
		_, _, taken := next.counts()
		if oldReleases != 0 || len(carried) != 1 {
			t.Fatalf("old process: %d releases, carried %q; want none released and one carried", oldReleases, carried)
		}
		if !slices.Equal(taken, carried) {
			t.Fatalf("next process took back %q, want %q", taken, carried)
		}
		if !refuse {
			if nextSrv.resumed.Publishers != 1 || nextSrv.resumed.Failed != 0 {
				t.Fatalf("resumed %+v, want the publisher", nextSrv.resumed)
			}
			if starts, stops, _ := auth.counts(); starts != 1 || stops != 0 {
				t.Fatalf("callback: %d starts, %d stops; want 1 and 0", starts, stops)
			}
			if live, _ := nextSrv.KillSession("live"); !live {
				t.Fatal("kill-session found no resumed publisher")
			}
			waitFor(t, "the next process's release", 10*time.Second, func() bool { n, _, _ := next.counts(); return n == 1 })
			waitFor(t, "the stop event", 10*time.Second, func() bool { _, stops, _ := auth.counts(); return stops == 1 })
			continue
		}
		if nextSrv.resumed.Publishers != 0 || nextSrv.resumed.Failed != 1 {
			t.Fatalf("resumed %+v, want the publisher ended", nextSrv.resumed)
		}
		if !strings.Contains(nextSrv.logs.String(), "channel claimed by box-b during the hand-over") {
			t.Fatalf("the next process's log does not say why:\n%s", nextSrv.logs.String())
		}
		readUntilClosed(t, "refused publisher", pub)
		waitFor(t, "the stop event", 10*time.Second, func() bool { _, stops, _ := auth.counts(); return stops == 1 })
		if starts, stops, _ := auth.counts(); starts != 1 || stops != 1 {
			t.Fatalf("callback: %d starts, %d stops; want 1 and 1", starts, stops)
		}
	}
}

// TestHandOverAbortReleasesAdmission: a hand-over that does not happen
// (Abort: the store could not take it) ends the publish as at a shutdown,
// releasing its admission; none is carried over.
func TestHandOverAbortReleasesAdmission(t *testing.T) {
	t.Parallel()
	auth := newRecordingAuthorizer()
	a := &carrier{}
	ts := startServer(t, nil, func(s *Server) { s.SetAuthorizer(auth); s.Admission = a })
	pub := ts.dial(t, "live")
	st, err := pub.Publish("key")
	expectStatus(t, st, err, "NetStream.Publish.Start")
	ho, err := ts.HandOver(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ho.Publishers != 1 {
		t.Fatalf("handed over %d publishers, want 1", ho.Publishers)
	}
	ho.Abort()
	readUntilClosed(t, "publisher", pub)
	waitFor(t, "the release", 10*time.Second, func() bool { n, _, _ := a.counts(); return n == 1 })
	if _, carried, _ := a.counts(); len(carried) != 0 {
		t.Fatalf("carried over %q after an Abort, want none", carried)
	}
	waitFor(t, "the stop event", 10*time.Second, func() bool { _, stops, _ := auth.counts(); return stops == 1 })
}
