package server

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/access"
	"github.com/rtmp-server/rtmp-server/internal/amf"
	"github.com/rtmp-server/rtmp-server/internal/client"
	"github.com/rtmp-server/rtmp-server/internal/message"
	"github.com/rtmp-server/rtmp-server/internal/servertest"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

func publish(t testing.TB, ts *testServer, channel, key string) *client.Conn {
	t.Helper()
	c := ts.dial(t, channel)
	st, err := c.Publish(key)
	expectStatus(t, st, err, "NetStream.Publish.Start")
	return c
}

func TestPublishPlayStatuses(t *testing.T) {
	ts := startServer(t, nil)
	pub := publish(t, ts, "live", "key1")

	p := ts.dial(t, "live")
	st, err := p.Play("key1")
	expectStatus(t, st, err, "NetStream.Play.Start")

	bad := ts.dial(t, "live")
	st, err = bad.Play("wrong")
	expectStatus(t, st, err, "NetStream.Play.BadName")
	if st.Description != "Invalid stream key provided" {
		t.Errorf("description %q", st.Description)
	}

	dup := ts.dial(t, "live")
	st, err = dup.Publish("key2")
	expectStatus(t, st, err, "NetStream.Publish.BadName")
	if st.Description != "Stream already publishing" {
		t.Errorf("description %q", st.Description)
	}

	badKey := ts.dial(t, "other")
	st, err = badKey.Publish("no spaces")
	expectStatus(t, st, err, "NetStream.Publish.BadName")

	// Still publishing: media reaches the player.
	if err := pub.WriteMedia(message.TypeVideo, 0, videoHeader); err != nil {
		t.Fatal(err)
	}
	if err := pub.WriteMedia(message.TypeVideo, 40, keyframe(1)); err != nil {
		t.Fatal(err)
	}
	got := readMedia(t, p, 2)
	if !bytes.Equal(got[1].Payload, keyframe(1)) || got[1].Timestamp != 40 {
		t.Fatalf("player got %+v", got[1])
	}
}

func TestConnectRejections(t *testing.T) {
	tests := []struct {
		name string
		app  string
		mod  func(*Options)
		want string
	}{
		{"invalid channel characters", "bad.channel", nil, "Invalid channel."},
		{"channel too long", strings.Repeat("a", 9), func(c *Options) { c.IDMaxLength = 8 }, "Invalid channel."},
		{"empty channel", "", nil, "Invalid channel."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, tt.mod)
			_, err := servertest.DialStream(t, ts.addr, tt.app)
			var st client.Status
			if !errors.As(err, &st) || st.Code != "NetConnection.Connect.Rejected" || st.Description != tt.want {
				t.Fatalf("connect: %v, want NetConnection.Connect.Rejected %q", err, tt.want)
			}
		})
	}
}

func TestPerIPLimit(t *testing.T) {
	ts := startServer(t, func(c *Options) { c.MaxIPConnections = 2 })
	ts.dial(t, "a")
	ts.dial(t, "b")
	_, err := servertest.DialStream(t, ts.addr, "c")
	var st client.Status
	if !errors.As(err, &st) || st.Code != "NetConnection.Connect.Rejected" {
		t.Fatalf("third connection: %v, want NetConnection.Connect.Rejected", err)
	}

	// Exempt addresses are not limited.
	mustSetOptions(t, ts.Server, func() Options {
		cfg := ts.Options()
		cfg.ConcurrentLimitWhitelist = access.MustParseList("127.0.0.1")
		return cfg
	}())
	ts.dial(t, "d")
}

func TestPlayWhitelist(t *testing.T) {
	ts := startServer(t, func(c *Options) { c.PlayWhitelist = access.MustParseList("10.0.0.0/8,::1") })
	publish(t, ts, "live", "k")
	p := ts.dial(t, "live")
	st, err := p.Play("k")
	expectStatus(t, st, err, "NetStream.Play.BadName")
	if st.Description != "Your net address is not whitelisted for playing" {
		t.Errorf("description %q", st.Description)
	}
	ts.events.wait(t, "the refusal with its reason", 1, kind(PlayRefused, "RTMP_PLAY_WHITELIST"))

	// A bare IP in the list allows that address.
	mustSetOptions(t, ts.Server, func() Options {
		cfg := ts.Options()
		cfg.PlayWhitelist = access.MustParseList("10.0.0.0/8, 127.0.0.1")
		return cfg
	}())
	p2 := ts.dial(t, "live")
	st, err = p2.Play("k")
	expectStatus(t, st, err, "NetStream.Play.Start")
}

func TestUnknownCommandGetsError(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.dial(t, "live")
	txn, err := c.Call(0, "noSuchMethod", nil)
	if err != nil {
		t.Fatal(err)
	}
	for {
		cmd, err := c.ReadCommand()
		if err != nil {
			t.Fatal(err)
		}
		if cmd.Txn == txn {
			if cmd.Name != "_error" || cmd.StatusOf().Code != "NetConnection.Call.Failed" {
				t.Fatalf("got %s %+v", cmd.Name, cmd.StatusOf())
			}
			break
		}
	}
	// The connection is still usable.
	st, err := c.Publish("k")
	expectStatus(t, st, err, "NetStream.Publish.Start")
}

func TestGOPCacheStartsAtLastKeyframe(t *testing.T) {
	ts := startServer(t, nil)
	pub := publish(t, ts, "live", "k")
	meta, _ := amf.AppendAMF0All(nil, "@setDataFrame", "onMetaData", amf.ECMAArray{{Key: "width", Value: 320.0}})
	send := func(typ uint8, tsms uint32, p []byte) {
		t.Helper()
		if err := pub.WriteMedia(typ, tsms, p); err != nil {
			t.Fatal(err)
		}
	}
	send(message.TypeDataAMF0, 0, meta)
	send(message.TypeVideo, 0, videoHeader)
	send(message.TypeAudio, 0, audioHeader)
	send(message.TypeVideo, 0, keyframe(1))
	send(message.TypeVideo, 40, interFrame(2))
	send(message.TypeAudio, 50, audioFrame(3))
	send(message.TypeVideo, 80, keyframe(4))
	send(message.TypeVideo, 120, interFrame(5))
	send(message.TypeAudio, 130, audioFrame(6))
	// Wait until the server has read them all: a player joining now must
	// see them in its first burst. A sentinel player reads until the last
	// message sent, whether it joined before or after the second keyframe.
	sync := ts.dial(t, "live")
	if st, err := sync.Play("k"); err != nil {
		t.Fatal(st, err)
	}
	for last := false; !last; {
		for _, m := range readMedia(t, sync, 1) {
			last = last || m.Type == message.TypeAudio && m.Timestamp == 130
		}
	}

	p := ts.dial(t, "live")
	if st, err := p.Play("k"); err != nil {
		t.Fatal(st, err)
	}
	got := readMedia(t, p, 6)
	// Metadata and headers are stamped with the first cached frame's time.
	want := []struct {
		typ     uint8
		ts      uint32
		payload []byte
	}{
		{message.TypeDataAMF0, 80, nil},
		{message.TypeVideo, 80, videoHeader},
		{message.TypeAudio, 80, audioHeader},
		{message.TypeVideo, 80, keyframe(4)},
		{message.TypeVideo, 120, interFrame(5)},
		{message.TypeAudio, 130, audioFrame(6)},
	}
	for i, w := range want {
		g := got[i]
		if g.Type != w.typ || g.Timestamp != w.ts || (w.payload != nil && !bytes.Equal(g.Payload, w.payload)) {
			t.Fatalf("message %d: got type %d ts %d % x, want type %d ts %d % x", i, g.Type, g.Timestamp, g.Payload, w.typ, w.ts, w.payload)
		}
	}
	vals, err := amf.DecodeAMF0All(got[0].Payload)
	if err != nil || len(vals) != 2 || vals[0] != "onMetaData" {
		t.Fatalf("metadata sent as %v (%v), want onMetaData without @setDataFrame", vals, err)
	}
}

func TestCacheNoStartsAtNextKeyframe(t *testing.T) {
	ts := startServer(t, nil)
	pub := publish(t, ts, "live", "k")
	for _, m := range []struct {
		typ uint8
		ts  uint32
		p   []byte
	}{{message.TypeVideo, 0, videoHeader}, {message.TypeVideo, 0, keyframe(1)}, {message.TypeVideo, 40, interFrame(2)}} {
		if err := pub.WriteMedia(m.typ, m.ts, m.p); err != nil {
			t.Fatal(err)
		}
	}
	sync := ts.dial(t, "live")
	if st, err := sync.Play("k"); err != nil {
		t.Fatal(st, err)
	}
	readMedia(t, sync, 3)

	p := ts.dial(t, "live")
	if st, err := p.Play("k?cache=no"); err != nil {
		t.Fatal(st, err)
	}
	if err := pub.WriteMedia(message.TypeVideo, 80, interFrame(3)); err != nil {
		t.Fatal(err)
	}
	if err := pub.WriteMedia(message.TypeVideo, 120, keyframe(4)); err != nil {
		t.Fatal(err)
	}
	got := readMedia(t, p, 2)
	if !bytes.Equal(got[0].Payload, videoHeader) || !bytes.Equal(got[1].Payload, keyframe(4)) {
		t.Fatalf("got % x then % x, want the header then the next keyframe", got[0].Payload, got[1].Payload)
	}
}

func TestWaitingPlayerStartsAndSeesEnd(t *testing.T) {
	ts := startServer(t, nil)
	p := ts.dial(t, "live")
	st, err := p.Play("k")
	expectStatus(t, st, err, "NetStream.Play.Start")
	waitFor(t, "player registered", 5*time.Second, func() bool { return ts.Hub().Stats().Players == 1 })

	wrong := ts.dial(t, "live")
	st, err = wrong.Play("other")
	expectStatus(t, st, err, "NetStream.Play.Start") // nobody publishes yet: it waits too

	pub := publish(t, ts, "live", "k")
	st, err = wrong.WaitStatus()
	expectStatus(t, st, err, "NetStream.Play.BadName")

	st, err = p.WaitStatus()
	expectStatus(t, st, err, "NetStream.Play.PublishNotify")
	if err := pub.WriteMedia(message.TypeVideo, 0, videoHeader); err != nil {
		t.Fatal(err)
	}
	if err := pub.WriteMedia(message.TypeVideo, 0, keyframe(1)); err != nil {
		t.Fatal(err)
	}
	readMedia(t, p, 2)

	if _, err := pub.Call(0, "deleteStream", nil, float64(pub.StreamID())); err != nil {
		t.Fatal(err)
	}
	st, err = p.WaitStatus()
	expectStatus(t, st, err, "NetStream.Play.UnpublishNotify")

	// The player waits and starts again with the next publisher.
	pub2 := publish(t, ts, "live", "k")
	st, err = p.WaitStatus()
	expectStatus(t, st, err, "NetStream.Play.PublishNotify")
	if err := pub2.WriteMedia(message.TypeVideo, 0, videoHeader); err != nil {
		t.Fatal(err)
	}
	if err := pub2.WriteMedia(message.TypeVideo, 0, keyframe(9)); err != nil {
		t.Fatal(err)
	}
	got := readMedia(t, p, 2)
	if !bytes.Equal(got[1].Payload, keyframe(9)) {
		t.Fatalf("got % x", got[1].Payload)
	}
}

func TestReconnectReplacesSilentPublisher(t *testing.T) {
	ts := startServer(t, nil, func(s *Server) { s.PublisherStaleAfter = 200 * time.Millisecond })
	old := publish(t, ts, "live", "k")
	oldID := ts.Hub().Lookup("live").SessionID()
	// The old connection goes silent (its network died) but is not closed.
	start := time.Now()
	fresh := ts.dial(t, "live")
	st, err := fresh.Publish("k")
	expectStatus(t, st, err, "NetStream.Publish.Start")
	if ts.Hub().Lookup("live").SessionID() == oldID {
		t.Fatal("the old session still publishes")
	}
	t.Logf("replaced a silent publisher after %v", time.Since(start).Round(time.Millisecond))
	// The old session is closed.
	_ = old.SetDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, err := old.ReadMessage(); err != nil {
			break
		}
	}

	// A different key is still refused while the publisher is alive.
	other := ts.dial(t, "live")
	st, err = other.Publish("k2")
	expectStatus(t, st, err, "NetStream.Publish.BadName")
}

func TestActivePublisherIsNotReplaced(t *testing.T) {
	// Media every 100 ms keeps the publisher well inside PublisherStaleAfter.
	ts := startServer(t, nil, func(s *Server) { s.PublisherStaleAfter = 600 * time.Millisecond })
	pub := publish(t, ts, "live", "k")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
				if pub.WriteMedia(message.TypeAudio, uint32(i*100), audioFrame(byte(i))) != nil {
					return
				}
			}
		}
	}()
	defer func() { close(stop); <-done }()
	dup := ts.dial(t, "live")
	st, err := dup.Publish("k")
	expectStatus(t, st, err, "NetStream.Publish.BadName")
}

func TestSlowPlayerDoesNotBlockPublisher(t *testing.T) {
	ts := startServer(t, nil, func(s *Server) { s.WriteTimeout = time.Second })
	pub := publish(t, ts, "live", "k")
	if err := pub.SetChunkSize(64 << 10); err != nil {
		t.Fatal(err)
	}
	stalled := ts.dial(t, "live") // plays, then never reads
	if st, err := stalled.Play("k"); err != nil {
		t.Fatal(st, err)
	}
	fast := ts.dial(t, "live")
	if st, err := fast.Play("k"); err != nil {
		t.Fatal(st, err)
	}
	frame := bytes.Repeat([]byte{0xAB}, 64<<10)
	frame[0], frame[1] = 0x17, 0x01
	const n = 400 // 25 MiB: more than the stalled player's socket and queue hold
	last := uint32((n - 1) * 40)
	// The reading player sees the last frame (it may have skipped some if
	// it fell behind; every frame here is a keyframe).
	fastDone := make(chan error, 1)
	go func() {
		for {
			m, err := fast.ReadMessage()
			if err != nil {
				fastDone <- err
				return
			}
			if m.Type == message.TypeVideo && m.Timestamp == last {
				fastDone <- nil
				return
			}
		}
	}()
	// The publisher gets through everything although one player reads nothing.
	for i := 0; i < n; i++ {
		if err := pub.WriteMedia(message.TypeVideo, uint32(i*40), frame); err != nil {
			t.Fatalf("publisher blocked at frame %d: %v", i, err)
		}
	}
	if err := <-fastDone; err != nil {
		t.Fatalf("reading player: %v", err)
	}
	// The stalled one is disconnected after the write deadline.
	ts.events.wait(t, "stalled player disconnected", 1, kind(PlayerDropped, "player stopped reading"))
}

func TestKillAndCloseStream(t *testing.T) {
	ts := startServer(t, nil)
	pub := publish(t, ts, "live", "k")
	id := ts.Hub().Lookup("live").StreamID
	if live, _ := ts.CloseStream("live", "not-"+id); live {
		t.Fatal("close-stream with another id acted")
	}
	if live, pending := ts.KillSession("nochannel"); live || pending != 0 {
		t.Fatal("kill-session of an unknown channel acted")
	}
	if live, _ := ts.CloseStream("live", id); !live {
		t.Fatal("close-stream with the right id did nothing")
	}
	_ = pub.SetDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, err := pub.ReadMessage(); err != nil {
			break
		}
	}
	waitFor(t, "publication gone", 5*time.Second, func() bool { return ts.Hub().Lookup("live") == nil })
}

func TestValidID(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want bool
	}{
		{"abc-DEF_123", 128, true},
		{"", 128, false},
		{"a.b", 128, false},
		{"abcd", 3, false},
		{"ключ", 128, false},
	}
	for _, tt := range tests {
		if got := validID(tt.in, tt.max); got != tt.want {
			t.Errorf("validID(%q, %d) = %v", tt.in, tt.max, got)
		}
	}
}

// remoteAddrConn is a net.Conn whose only behaviour is its remote address.
type remoteAddrConn struct {
	net.Conn
	addr net.Addr
}

func (c remoteAddrConn) RemoteAddr() net.Addr { return c.addr }

// textAddr is a net.Addr given by its text.
type textAddr string

func (a textAddr) Network() string { return "tcp" }
func (a textAddr) String() string  { return string(a) }

// TestRemoteIPUnmapsIPv4: a dual-stack listener reports IPv4 peers as
// IPv4-mapped IPv6 addresses (a 16-byte IP in a *net.TCPAddr, or that
// address in text); remoteIP unmaps them, so that IPv4 allow and deny
// lists and the per-IP limit see the IPv4 address.
func TestRemoteIPUnmapsIPv4(t *testing.T) {
	tests := []struct {
		name string
		addr net.Addr
		want netip.Addr
	}{
		{"mapped IPv4", &net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.1"), Port: 40000}, netip.MustParseAddr("127.0.0.1")},
		{"mapped IPv4 text", textAddr("[::ffff:127.0.0.1]:40000"), netip.MustParseAddr("127.0.0.1")},
		{"IPv4", &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7).To4(), Port: 1}, netip.MustParseAddr("192.0.2.7")},
		{"IPv6", &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 1935}, netip.MustParseAddr("2001:db8::1")},
		{"not an IP", &net.UnixAddr{Name: "@rtmp", Net: "unix"}, netip.Addr{}},
	}
	for _, tt := range tests {
		got := remoteIP(remoteAddrConn{addr: tt.addr})
		if got != tt.want {
			t.Errorf("%s: remoteIP(%v) = %v, want %v", tt.name, tt.addr, got, tt.want)
		}
	}
	if !access.MustParseList("127.0.0.1").Contains(remoteIP(remoteAddrConn{addr: tests[1].addr})) {
		t.Error("an IPv4 allow list does not match a mapped IPv4 peer")
	}
}

func TestMaxConnections(t *testing.T) {
	ts := startServer(t, func(c *Options) { c.MaxConnections = 2 })
	ts.dial(t, "a")
	ts.dial(t, "b")
	if _, err := client.Dial(ts.addr, nil, 5*time.Second); err == nil {
		t.Fatal("third connection completed the handshake")
	}
	ts.events.wait(t, "the refusal", 1, kind(ConnRefused, "MAX_CONNECTIONS reached"))
}

// TestSlowHandshakesDoNotStarvePublishers opens connections that never
// handshake; past MaxPending the oldest are dropped and a real publisher
// still gets in.
func TestSlowHandshakesDoNotStarvePublishers(t *testing.T) {
	ts := startServer(t, nil, func(s *Server) { s.MaxPending = 8 })
	var idle []net.Conn
	for i := 0; i < 8; i++ {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	waitFor(t, "idle connections accepted", 5*time.Second, func() bool {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		return ts.pending.Len() == 8
	})
	publish(t, ts, "live", "k")
	// The oldest idle connection was dropped to make room.
	_ = idle[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle[0].Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("oldest pending connection still open: %v", err)
	}
	ts.events.wait(t, "the eviction with its bound", 1, kind(ConnClosed, "MaxPending"))
	if !strings.Contains(ts.logs.String(), "MaxPending") {
		t.Fatal("eviction not logged with its bound")
	}
}

// flakyListener fails Accept with EMFILE a few times before accepting.
type flakyListener struct {
	net.Listener
	fails atomic.Int32
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

func TestAcceptLoopSurvivesTemporaryErrors(t *testing.T) {
	ln := testpeer.Listen(t)
	fl := &flakyListener{Listener: ln}
	fl.fails.Store(5)
	srv := mustNew(t, DefaultOptions(), nil)
	servertest.Serve(t, srv, fl, ErrServerClosed)
	c, err := client.Dial(ln.Addr().String(), nil, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect("live"); err != nil {
		t.Fatalf("after EMFILE from accept: %v", err)
	}
}
