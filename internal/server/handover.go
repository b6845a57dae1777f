package server

// Handing live sessions to the next process (a restart or an upgrade under
// systemd): HandOver stops every plain-RTMP connection past connect at a
// point where its state can be saved, writes out what is queued for it, and
// returns the sockets and the state (package handover); the caller stores
// them in systemd's file descriptor store and exits. The next process
// gives them to Adopt, which carries every session on: publishers keep
// their publication (no callback stop or start), players get the packets
// that follow the last one they were sent.
//
// What is not handed over ends as at a shutdown: RTMPS connections (TLS
// state cannot be exported), connections still in the handshake or
// connect, and any that does not stop in time.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/handover"
	"github.com/rtmp-server/rtmp-server/internal/hub"
	"github.com/rtmp-server/rtmp-server/internal/logging"
	"github.com/rtmp-server/rtmp-server/internal/session"
)

// Bounds of a hand-over.
const (
	// HandOverStopTimeout bounds how long HandOver waits for connections
	// to stop reading (a publish waiting for its callback, for one); those
	// still busy then end as at a shutdown.
	HandOverStopTimeout = 2 * time.Second
	// HandOverFlushTimeout bounds writing out what is queued for a
	// connection; one whose peer does not take it ends.
	HandOverFlushTimeout = time.Second
	// handOverEndWait bounds waiting for what is not handed over to end
	// (an RTMPS publisher's players are then told before they are saved)
	// when it takes longer than the rest (a peer that does not read).
	handOverEndWait = 300 * time.Millisecond
)

var (
	// errParked ends a read loop that stopped for a hand-over.
	errParked = errors.New("stopped for a hand-over")
	// errHandedOver is the close reason of a connection handed over.
	errHandedOver = errors.New("handed over to the next process")
	// ErrHandOverBusy is a second HandOver.
	ErrHandOverBusy = errors.New("server: hand-over already started")
	// ErrHandOverAdmission is HandOver on a server with an Admission that
	// is not a CarriedAdmission: the next process could not take the
	// publications' admissions over, so the sessions end as at a shutdown.
	ErrHandOverAdmission = errors.New("server: no hand-over with an Admission that cannot carry its admissions over")
)

// handoverState is the Server's side of a hand-over.
type handoverState struct {
	requested atomic.Bool // read loops stop at the next safe point
	mu        sync.Mutex
	closed    bool           // guarded by mu: no more parking
	parked    map[*conn]bool // guarded by mu
	changed   chan struct{}  // guarded by mu: closed and replaced when parked changes
	started   bool           // guarded by mu
}

// parkable reports whether c is to stop for the hand-over now: one is
// requested, and c is a plain-TCP connection past connect.
func (c *conn) parkable() bool {
	return c.srv.handover.requested.Load() && c.raw != nil && c.session != nil && c.session.Connected()
}

// readFailed is the read loop's hook for a failed read: a read stopped by
// the hand-over's deadline parks the connection.
func (c *conn) readFailed(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) && c.parkable() && c.reason() == nil {
		return errParked
	}
	return err
}

// park is run's hook for a read loop that returned errParked: c waits,
// with no goroutine, for HandOver to hand it over or give it back. It
// reports false when the hand-over no longer takes connections: the read
// loop then ends as at a shutdown.
func (c *conn) park() bool {
	h := &c.srv.handover
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.parked[c] = true
	close(h.changed)
	h.changed = make(chan struct{})
	return true
}

// HandedOver is the result of HandOver: the sockets of the sessions handed
// over and their state. The caller stores them and then calls Done, or
// Abort when it could not.
type HandedOver struct {
	srv *Server
	// Files are the sockets, one per session of State (matched by their
	// addresses). They are copies: the caller closes them.
	Files []*os.File
	// State is the encoded handover.State.
	State []byte
	// Sessions, Publishers and Players count what was handed over.
	Sessions, Publishers, Players int
	conns                         []*conn
	carrier                       CarriedAdmission // the server's, if any
}

// HandOver stops the server's sessions for the next process: it stops
// accepting, ends what cannot be handed over as Shutdown would, stops
// every other connection between two chunks, writes out what is queued for
// it, and returns the sockets and their state. The server is closed
// afterwards: the caller calls HandedOver.Done once the next process has
// what it needs (or Abort), then Shutdown for anything left.
func (s *Server) HandOver(ctx context.Context) (*HandedOver, error) {
	carrier, err := s.carrier()
	if err != nil {
		return nil, err
	}
	h := &s.handover
	h.mu.Lock()
	if h.started {
		h.mu.Unlock()
		return nil, ErrHandOverBusy
	}
	h.started = true
	h.parked = make(map[*conn]bool)
	h.changed = make(chan struct{})
	h.mu.Unlock()

	s.mu.Lock()
	s.closeLocked()
	var keep, end []*conn
	for c := range s.conns {
		if c.raw != nil && c.pendingElem == nil && c.live.Load() {
			keep = append(keep, c)
		} else {
			end = append(end, c)
		}
	}
	s.mu.Unlock()
	s.stopPinger()
	h.requested.Store(true)
	for _, c := range end {
		c.Kick(errShutdown)
	}
	// A past read deadline stops each read; the read loop parks (between
	// chunks, or inside one whose rest is read after the hand-over).
	for _, c := range keep {
		_ = c.nc.SetReadDeadline(time.Unix(1, 0))
	}

	begin := time.Now()
	stopBy, cancel := context.WithTimeout(ctx, HandOverStopTimeout)
	defer cancel()
	for {
		h.mu.Lock()
		n, changed := len(h.parked), h.changed
		h.mu.Unlock()
		// What is not handed over ends first, so that players of an RTMPS
		// publisher are told the stream ended before they are saved.
		if (n == len(keep) || s.allParkedOrGone(keep)) && (s.allParkedOrGone(end) || time.Since(begin) > handOverEndWait) {
			break
		}
		select {
		case <-changed:
		case <-stopBy.Done():
		case <-time.After(10 * time.Millisecond): // a connection that ended instead of parking
		}
		if stopBy.Err() != nil {
			break
		}
	}
	h.mu.Lock()
	h.closed = true
	parked := make([]*conn, 0, len(h.parked))
	for c := range h.parked {
		parked = append(parked, c)
	}
	h.mu.Unlock()
	isParked := make(map[*conn]bool, len(parked))
	for _, c := range parked {
		isParked[c] = true
	}
	for _, c := range keep {
		if !isParked[c] {
			// Busy (a publish waiting for its callback, say), or ended
			// meanwhile: it ends as at a shutdown.
			if !c.kicked.Load() {
				c.log.Warn("session not handed over", "reason", fmt.Sprintf("did not stop reading within %v", HandOverStopTimeout))
			}
			c.Kick(errShutdown)
		}
	}

	// Every publisher stopped: what they sent reaches the players' queues,
	// then the queues go out.
	for _, c := range parked {
		if c.pub != nil {
			c.pub.pub.Sync()
		}
	}
	out := &HandedOver{srv: s, carrier: carrier}
	st := &handover.State{Saved: time.Now().UTC()}
	for _, c := range parked {
		saved, err := c.saveForHandOver()
		if err != nil {
			c.log.Warn("session not handed over", "reason", err)
			c.unpark(err)
			continue
		}
		if c.pub != nil && carrier != nil {
			saved.Publisher.Claim, _ = carrier.Token(c.event(c.pub.key, c.pub.streamID))
		}
		f, err := c.nc.(*net.TCPConn).File()
		if err != nil {
			c.log.Warn("session not handed over", "reason", err)
			c.unpark(err)
			continue
		}
		st.Sessions = append(st.Sessions, saved)
		out.Files = append(out.Files, f)
		out.conns = append(out.conns, c)
		switch {
		case c.pub != nil:
			out.Publishers++
			var pkts []handover.Packet
			for _, p := range s.hub.Headers(c.channel) {
				pkts = append(pkts, handover.Packet{Type: p.Type, Timestamp: p.Timestamp, Metadata: p.Metadata, Payload: p.Payload})
			}
			st.Streams = append(st.Streams, handover.Stream{Channel: c.channel, Packets: pkts})
		case c.play != nil:
			out.Players++
		}
	}
	out.Sessions = len(out.conns)
	var buf bytes.Buffer
	if err := handover.Encode(&buf, st); err != nil {
		out.Abort()
		return nil, err
	}
	out.State = buf.Bytes()
	return out, nil
}

// allParkedOrGone reports whether every connection of keep has parked or
// ended.
func (s *Server) allParkedOrGone(keep []*conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := &s.handover
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range keep {
		if _, open := s.conns[c]; open && !h.parked[c] {
			return false
		}
	}
	return true
}

// saveForHandOver writes out what is queued for the parked c and returns
// its state.
func (c *conn) saveForHandOver() (handover.Session, error) {
	by := time.Now().Add(HandOverFlushTimeout)
	c.finishBy.Store(by.UnixNano())
	_ = c.nc.SetWriteDeadline(by)
	c.queue.Finish()
	if err := c.wire.flush(c.queue.Drain(c.wire.items[:0])); err != nil {
		return handover.Session{}, fmt.Errorf("writing what was queued: %w", err)
	}
	_ = c.nc.SetWriteDeadline(time.Time{})
	saved := handover.Session{
		ID:       c.id,
		Local:    c.nc.LocalAddr().String(),
		Remote:   c.nc.RemoteAddr().String(),
		FlashVer: c.flashVer,
		Protocol: c.session.State(),
		Unread:   c.reader.Unread(),
	}
	if c.pub != nil {
		saved.Publisher = &handover.Publisher{StreamID: c.pub.streamID, Started: c.pub.started, ForwardURLs: c.pub.forwardURLs}
	}
	if c.play != nil {
		p := c.play.player
		saved.Player = &handover.Player{
			ChunkSize:      c.wire.chunkSize,
			SkipToKeyframe: c.queue.SkippingToKeyframe(),
			Paused:         p.Paused(),
			NoAudio:        !p.ReceivesAudio(),
			NoVideo:        !p.ReceivesVideo(),
		}
	}
	if len(saved.Unread) > handover.MaxUnread {
		return handover.Session{}, fmt.Errorf("%d bytes read and not parsed (at most %d)", len(saved.Unread), handover.MaxUnread)
	}
	return saved, nil
}

// unpark ends a parked c that is not handed over as at a shutdown.
func (c *conn) unpark(reason error) {
	c.Kick(reason)
	c.finishBy.Store(0)
	go c.run()
}

// Done closes this process's copies of the sockets handed over (the
// connections stay open in the file descriptor store) and forgets their
// sessions.
func (ho *HandedOver) Done() {
	for _, f := range ho.Files {
		_ = f.Close()
	}
	for _, c := range ho.conns {
		if c.pub != nil && ho.carrier != nil {
			// The admission is the next process's now: this one
			// neither refreshes nor releases it.
			ho.carrier.CarriedOver(c.event(c.pub.key, c.pub.streamID))
		}
		c.Kick(errHandedOver)
		c.queue.Close()
		if c.ingest != nil {
			c.ingest.Close()
		}
		_ = c.nc.Close()
		c.observe(Event{Kind: ConnClosed, Reason: errHandedOver.Error()})
		c.release()
		c.srv.forget(c)
	}
	ho.conns = nil
}

// Abort gives the sessions back to their read loops, which end them as at
// a shutdown: the hand-over did not happen.
func (ho *HandedOver) Abort() {
	for _, f := range ho.Files {
		_ = f.Close()
	}
	for _, c := range ho.conns {
		c.unpark(errShutdown)
	}
	ho.conns = nil
}

// Resumed is what Adopt did.
type Resumed struct {
	Sessions, Publishers, Players int
	// Failed counts the connections closed instead, each logged with why.
	Failed int
	// Since is how long ago the previous process saved the state.
	Since time.Duration
}

// Adopt carries on the sessions a previous process handed over: state is
// the encoded handover.State, conns the sockets (in any order; matched by
// their addresses). Adopt takes ownership of every file. A connection that
// cannot be carried on (no state for it, a state this server refuses, a
// key or channel the current options make invalid) is closed and logged;
// a publication that does not go on gets its stop event. Call it before
// Serve.
func (s *Server) Adopt(state io.Reader, conns []*os.File) Resumed {
	var res Resumed
	socks := make(map[[2]netip.AddrPort]net.Conn, len(conns))
	for _, f := range conns {
		nc, err := net.FileConn(f)
		_ = f.Close()
		if err != nil {
			s.log.Warn("stored connection not resumed", "reason", err)
			res.Failed++
			continue
		}
		key, ok := addrPair(nc)
		if !ok {
			s.log.Warn("stored connection not resumed", "reason", "not a TCP connection")
			_ = nc.Close()
			res.Failed++
			continue
		}
		socks[key] = nc
	}
	st, err := handover.Decode(state)
	if err != nil {
		for _, nc := range socks {
			s.log.Warn("stored connection not resumed", "client", nc.RemoteAddr().String(), "reason", err)
			_ = nc.Close()
			res.Failed++
		}
		return res
	}
	res.Since = time.Since(st.Saved)
	streams := make(map[string]handover.Stream, len(st.Streams))
	for _, str := range st.Streams {
		streams[str.Channel] = str
	}
	var adopted []*conn
	// Publishers first, so that their players find them.
	for _, role := range []bool{true, false} {
		for i := range st.Sessions {
			saved := &st.Sessions[i]
			if (saved.Publisher != nil) != role {
				continue
			}
			pair, _ := savedPair(saved)
			nc := socks[pair]
			delete(socks, pair)
			if nc == nil {
				s.log.Warn("session not resumed", "session", saved.ID, "reason", "its connection closed during the hand-over")
				s.stopSaved(saved)
				res.Failed++
				continue
			}
			c, err := s.adoptConn(nc, saved, streams)
			if err != nil {
				s.log.Warn("session not resumed", "session", saved.ID, "client", nc.RemoteAddr().String(), "reason", err)
				_ = nc.Close()
				s.stopSaved(saved)
				res.Failed++
				continue
			}
			adopted = append(adopted, c)
			switch {
			case c.pub != nil:
				res.Publishers++
			case c.play != nil:
				res.Players++
			}
		}
	}
	for _, nc := range socks {
		s.log.Warn("stored connection not resumed", "client", nc.RemoteAddr().String(), "reason", "no saved state for it")
		_ = nc.Close()
		res.Failed++
	}
	// Read loops start once every player is back, so that none misses a
	// packet of its publisher.
	for _, c := range adopted {
		go c.run()
	}
	res.Sessions = len(adopted)
	return res
}

// stopSaved sends the stop event of a saved publication that does not go on.
func (s *Server) stopSaved(saved *handover.Session) {
	if saved.Publisher == nil || saved.Protocol.Publishing == nil {
		return
	}
	if auth := s.authorizer(); auth != nil {
		ip := netip.Addr{}
		if ap, err := netip.ParseAddrPort(saved.Remote); err == nil {
			ip = ap.Addr().Unmap()
		}
		auth.Stop(PublishEvent{Session: saved.ID, Channel: saved.Protocol.App, Key: saved.Protocol.Publishing.Name,
			ClientIP: ip.String(), StreamID: saved.Publisher.StreamID})
	}
}

func addrPair(nc net.Conn) ([2]netip.AddrPort, bool) {
	l, okL := nc.LocalAddr().(*net.TCPAddr)
	r, okR := nc.RemoteAddr().(*net.TCPAddr)
	if !okL || !okR {
		return [2]netip.AddrPort{}, false
	}
	return [2]netip.AddrPort{unmapped(l.AddrPort()), unmapped(r.AddrPort())}, true
}

// unmapped is ap with an IPv4-mapped IPv6 address as IPv4: a dual-stack
// socket's addresses are mapped, their String form is not.
func unmapped(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func savedPair(saved *handover.Session) ([2]netip.AddrPort, error) {
	l, err := netip.ParseAddrPort(saved.Local)
	if err != nil {
		return [2]netip.AddrPort{}, err
	}
	r, err := netip.ParseAddrPort(saved.Remote)
	return [2]netip.AddrPort{unmapped(l), unmapped(r)}, err
}

// adoptConn builds the connection of one saved session on nc and puts its
// role back in the hub. Its read loop is not started.
func (s *Server) adoptConn(nc net.Conn, saved *handover.Session, streams map[string]handover.Stream) (*conn, error) {
	opts := s.options()
	p := &saved.Protocol
	if !validID(p.App, opts.IDMaxLength) {
		return nil, fmt.Errorf("channel %s is not valid under ID_MAX_LENGTH=%d", logging.Quote(p.App), opts.IDMaxLength)
	}
	ip := remoteIP(nc)
	if p.Playing != nil && !opts.PlayWhitelist.Contains(ip) {
		return nil, errors.New("address not in RTMP_PLAY_WHITELIST")
	}
	for _, str := range []*session.Stream{p.Publishing, p.Playing} {
		if str != nil && !validID(str.Name, opts.IDMaxLength) {
			return nil, fmt.Errorf("stream key not valid under ID_MAX_LENGTH=%d", opts.IDMaxLength)
		}
	}
	release, ok := s.limiter.Acquire(ip)
	if !ok {
		release = func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{
		srv: s, nc: nc, id: saved.ID, clientIP: ip, ip: ip.String(), opts: opts,
		release: release, ctx: ctx, cancel: cancel,
		channel: p.App, flashVer: saved.FlashVer,
	}
	c.initOutput()
	if c.raw == nil {
		release()
		cancel()
		return nil, errors.New("not a plain TCP socket")
	}
	// A publisher reads through its ingest reader, as after its publish.
	var src io.Reader = nc
	size := readBufferSize
	if saved.Publisher != nil {
		c.ingest = newIngestReader(c.raw, &s.ingest)
		src, size = c.ingest, publishBufferSize
	}
	if len(saved.Unread) > 0 {
		src = io.MultiReader(bytes.NewReader(saved.Unread), src)
	}
	reader := chunk.NewReader(bufio.NewReaderSize(src, size))
	c.reader = reader
	fail := func(err error) (*conn, error) {
		if c.ingest != nil {
			c.ingest.Close()
		}
		release()
		cancel()
		return nil, err
	}
	c.log = s.log.With("session", c.id, "client_ip", c.ip)
	var err error
	c.session, err = session.Restore(reader, func(m *chunk.Message) error {
		c.sendEncoded(m)
		return nil
	}, *p)
	if err != nil {
		return fail(err)
	}
	wireSize := p.WireChunkSize
	if wireSize == 0 {
		wireSize = chunk.DefaultChunkSize
	}
	c.wire = wireWriter{conn: c, chunkSize: wireSize}
	c.lastRead.Store(time.Now().UnixNano())
	c.live.Store(true)

	switch {
	case saved.Publisher != nil:
		err = s.adoptPublisher(c, saved, streams[p.App])
	case saved.Player != nil:
		err = s.adoptPlayer(c, saved)
	}
	if err != nil {
		return fail(err)
	}
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.connWG.Add(1)
	s.mu.Unlock()
	for {
		// New sessions get IDs above the adopted ones.
		next := s.nextID.Load()
		if next >= c.id || s.nextID.CompareAndSwap(next, c.id) {
			break
		}
	}
	c.observe(Event{Kind: ConnAccepted})
	c.observe(Event{Kind: HandshakeDone})
	c.observe(Event{Kind: Connected})
	switch {
	case c.pub != nil:
		c.observe(Event{Kind: PublishAccepted, StreamID: logging.Clip(c.pub.streamID)})
	case c.play != nil:
		c.observe(Event{Kind: PlayAccepted})
	}
	c.log.Debug("session resumed")
	return c, nil
}

func (s *Server) adoptPublisher(c *conn, saved *handover.Session, str handover.Stream) error {
	srvOpts := s.options()
	p := saved.Protocol.Publishing
	opts := hub.PublishOptions{
		ChunkSize:     uint32(srvOpts.ChunkSize),
		GOPCacheBytes: srvOpts.GOPCacheBytes,
		StaleAfter:    s.PublisherStaleAfter,
	}
	release, err := s.takeBack(c, p.Name, saved.Publisher)
	if err != nil {
		return err
	}
	pub, _, err := s.hub.Publish(c.channel, p.Name, saved.Publisher.StreamID, c, opts)
	if err != nil {
		release()
		return fmt.Errorf("publishing again: %w", err)
	}
	for _, pkt := range str.Packets {
		pub.Write(pkt.Type, pkt.Timestamp, pkt.Payload, pkt.Metadata)
	}
	c.pub = &publisher{streamMsgID: p.ID, key: p.Name, streamID: saved.Publisher.StreamID, pub: pub,
		auth: s.authorizer(), release: release, started: saved.Publisher.Started, forwardURLs: saved.Publisher.ForwardURLs}
	// Forwards are outgoing connections of the previous process, which
	// ended with it: they start again.
	s.forwardStarted(pub, nil, saved.Publisher.ForwardURLs)
	return nil
}

func (s *Server) adoptPlayer(c *conn, saved *handover.Session) error {
	p := saved.Protocol.Playing
	pl := &player{c: c, streamMsgID: p.ID}
	pl.player = hub.NewPlayer(c.id, p.Name, c.queue, pl)
	pl.player.Addr = c.clientIP
	pl.player.SetReceiveAudio(!saved.Player.NoAudio)
	if saved.Player.NoVideo {
		pl.player.SetReceiveVideo(false)
	}
	pl.player.SetPaused(saved.Player.Paused)
	c.wire.chunkSize = saved.Player.ChunkSize
	c.playID.Store(p.ID)
	c.playing.Store(true)
	if _, err := s.hub.Resume(c.channel, pl.player, saved.Player.SkipToKeyframe); err != nil {
		c.playing.Store(false)
		return fmt.Errorf("playing again: %w", err)
	}
	c.play = pl
	return nil
}
