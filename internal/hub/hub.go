// Package hub connects publishers to players: one Stream per channel, with
// the publisher's metadata, codec headers and GOP cache, and the set of
// players waiting for or playing it.
//
// Locking: Hub.mu guards membership (which streams exist, who publishes,
// who plays); Stream.mu guards a stream's media state and is the only lock
// taken per media packet. The order is Hub.mu, then Stream.mu. Nothing
// reaches a player under either: what players get (packets, a joining
// player's start, the stream events of PlayerEvents) is decided under them
// as a list of jobs, carried out in order once they are released, under
// Stream.fanMu, which is taken with no other lock held (Stream.mu may be
// taken under it). Delivery never blocks: it appends to queues, or writes
// to sockets without blocking (see NewDirectQueue). Kicking a publisher
// happens after the locks are released, too.
package hub

import (
	"crypto/subtle"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Sentinel errors.
var (
	ErrStreamBusy = errors.New("hub: stream already publishing")
	ErrBadKey     = errors.New("hub: invalid stream key")
	ErrClosed     = errors.New("hub: closed")
	// ErrReplaced is the reason given to a publisher kicked by a reconnecting one.
	ErrReplaced = errors.New("hub: replaced by a new publisher with the same key")
)

// Publisher is the hub's view of a publishing connection.
type Publisher interface {
	// SessionID identifies the connection in logs.
	SessionID() uint64
	// Idle reports how long ago the publisher last sent anything.
	Idle() time.Duration
	// Kick ends the connection with reason. It must not block.
	Kick(reason error)
}

// PlayerEvents receives a player's stream events. They are called in order
// with the media the player gets, with no lock of the hub held, on the
// goroutine carrying out the stream's jobs (the caller of Play, Publish,
// Unpublish or StopPlaying, or the stream's fan-out); they must not block
// and must not call the hub.
type PlayerEvents interface {
	// Accepted is called when Play accepts the player, before any media is queued.
	Accepted()
	// PublishStarted is called when a waiting player starts receiving a new publication.
	PublishStarted()
	// Unpublished is called when the publisher leaves; the player keeps waiting.
	Unpublished()
	// Rejected is called when a new publication's key does not match the
	// player's; the player is removed and should be disconnected.
	Rejected(err error)
}

// Player is one playing connection. The caller fills the exported fields
// before Hub.Play and must not change them afterwards.
type Player struct {
	SessionID uint64
	Key       string
	Queue     *Queue
	Events    PlayerEvents
	// NoCache skips the GOP cache (?cache=no): the player starts at the next keyframe.
	NoCache bool
	// ClearCache empties and disables the stream's GOP cache (?cache=clear).
	ClearCache bool
	// Addr is the player's address, for monitoring; optional.
	Addr netip.Addr

	audio  atomic.Bool // receiveAudio; true by default
	video  atomic.Bool // receiveVideo; true by default
	paused atomic.Bool

	stream  *Stream   // guarded by Hub.mu
	playing bool      // guarded by the stream's mu: false while waiting for a publisher
	from    uint64    // guarded by the stream's mu: first packet not taken from the cache
	since   time.Time // written with Hub.mu and the stream's mu held: when Play accepted it
}

// NewPlayer returns a player receiving audio and video.
func NewPlayer(sessionID uint64, key string, q *Queue, ev PlayerEvents) *Player {
	p := &Player{SessionID: sessionID, Key: key, Queue: q, Events: ev}
	p.audio.Store(true)
	p.video.Store(true)
	return p
}

// SetReceiveAudio and SetReceiveVideo implement receiveAudio/receiveVideo.
func (p *Player) SetReceiveAudio(on bool) { p.audio.Store(on) }

// SetReceiveVideo implements receiveVideo; turning video back on resumes at a keyframe.
func (p *Player) SetReceiveVideo(on bool) {
	if on && !p.video.Load() {
		p.Queue.SkipToKeyframe()
	}
	p.video.Store(on)
}

// SetPaused implements pause; resuming starts again at the next keyframe.
func (p *Player) SetPaused(paused bool) {
	if !paused && p.paused.Load() {
		p.Queue.SkipToKeyframe()
	}
	p.paused.Store(paused)
}

// Stats is a snapshot of the hub's counters.
type Stats struct {
	Streams    int
	Publishers int
	Players    int
	BytesIn    uint64
	BytesOut   uint64
	MessagesIn uint64 // media and data messages received from publishers
}

// Hub is the registry of streams. The zero value is not usable; call New.
type Hub struct {
	mu      sync.Mutex
	streams map[string]*Stream // guarded by mu
	closed  bool               // guarded by mu

	fanWG sync.WaitGroup // the streams' running fan-out goroutines; see Wait

	gopBytes  atomic.Int64 // bytes held by all GOP caches
	gopBudget atomic.Int64 // limit of gopBytes; 0: none

	publishers atomic.Int64
	players    atomic.Int64
	bytesIn    atomic.Uint64
	bytesOut   atomic.Uint64
	messagesIn atomic.Uint64
}

// New returns an empty hub.
func New() *Hub {
	return &Hub{streams: make(map[string]*Stream)}
}

// keysEqual compares stream keys in constant time.
func keysEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// streamLocked returns the stream of channel, creating it. h.mu must be held.
func (h *Hub) streamLocked(channel string) *Stream {
	s := h.streams[channel]
	if s == nil {
		s = newStream(h, channel)
		h.streams[channel] = s
	}
	return s
}

// removeIfEmptyLocked forgets s when nobody publishes or plays it. h.mu must be held.
func (h *Hub) removeIfEmptyLocked(s *Stream) {
	if s.pub == nil && len(s.players) == 0 && h.streams[s.channel] == s {
		delete(h.streams, s.channel)
	}
}

// Stats returns the current counters.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	n := len(h.streams)
	h.mu.Unlock()
	return Stats{
		Streams:    n,
		Publishers: int(h.publishers.Load()),
		Players:    int(h.players.Load()),
		BytesIn:    h.bytesIn.Load(),
		BytesOut:   h.bytesOut.Load(),
		MessagesIn: h.messagesIn.Load(),
	}
}

// SetGOPBudget bounds the bytes all streams' GOP caches hold together;
// 0 removes the bound.
func (h *Hub) SetGOPBudget(n int64) { h.gopBudget.Store(max(n, 0)) }

// Players reports the number of players, waiting or playing.
func (h *Hub) Players() int { return int(h.players.Load()) }

// AddBytesOut counts bytes written to players.
func (h *Hub) AddBytesOut(n int) { h.bytesOut.Add(uint64(n)) }

// Ping checks that the hub's locks can be taken, for the watchdog. It
// returns false if they could not be within the deadline.
func (h *Hub) Ping(deadline time.Duration) bool {
	done := make(chan struct{})
	go func() {
		h.mu.Lock()
		streams := make([]*Stream, 0, len(h.streams))
		for _, s := range h.streams {
			streams = append(streams, s)
		}
		h.mu.Unlock()
		for _, s := range streams {
			s.mu.Lock()
			//lint:ignore SA2001 taking the lock is the check
			s.mu.Unlock()
		}
		close(done)
	}()
	t := time.NewTimer(deadline)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// Publication is an accepted publish: the handle a publisher feeds media through.
type Publication struct {
	Channel  string
	Key      string
	StreamID string
	conn     Publisher
	stream   *Stream
	started  time.Time
	ended    atomic.Bool
	stats    streamStats // guarded by the stream's mu
}

// HasKey compares key with the publication's in constant time.
func (pub *Publication) HasKey(key string) bool { return keysEqual(pub.Key, key) }

// Idle reports how long ago the publisher last sent anything.
func (pub *Publication) Idle() time.Duration { return pub.conn.Idle() }

// ClientAddr is the publisher's address, when its connection reports one.
func (pub *Publication) ClientAddr() netip.Addr {
	if a, ok := pub.conn.(interface{ ClientAddr() netip.Addr }); ok {
		return a.ClientAddr()
	}
	return netip.Addr{}
}

// SessionID identifies the publishing connection.
func (pub *Publication) SessionID() uint64 { return pub.conn.SessionID() }

// PublishOptions are the per-publication settings taken from the configuration.
type PublishOptions struct {
	ChunkSize     uint32
	GOPCacheBytes int64
	// StaleAfter lets a publish with the same key replace a publisher that
	// has sent nothing for this long (an encoder reconnecting after its old
	// connection died). Zero disables replacement.
	StaleAfter time.Duration
}

// CheckPublish reports whether channel could be published with key now,
// without claiming it. It is used before asking the callback server, so a
// busy channel is refused without a callback; Publish checks again.
func (h *Hub) CheckPublish(channel, key string, opts PublishOptions) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	if s := h.streams[channel]; s != nil && s.pub != nil && !replaceable(s.pub, key, opts) {
		return ErrStreamBusy
	}
	return nil
}

func replaceable(old *Publication, key string, opts PublishOptions) bool {
	return opts.StaleAfter > 0 && keysEqual(old.Key, key) && old.conn.Idle() >= opts.StaleAfter
}

// Publish makes conn the publisher of channel. If the channel has a
// publisher with the same key that has been silent for opts.StaleAfter, that
// publisher is kicked and returned as replaced. Waiting players with the
// same key start; those with another key are rejected.
func (h *Hub) Publish(channel, key, streamID string, conn Publisher, opts PublishOptions) (pub, replaced *Publication, err error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, nil, ErrClosed
	}
	s := h.streamLocked(channel)
	if s.pub != nil {
		if !replaceable(s.pub, key, opts) {
			h.mu.Unlock()
			return nil, nil, ErrStreamBusy
		}
		replaced = s.pub
	}
	pub = &Publication{Channel: channel, Key: key, StreamID: streamID, conn: conn, stream: s, started: time.Now()}
	s.mu.Lock()
	if replaced != nil {
		// Hand over: players keep playing and resume at the new
		// publisher's first keyframe.
		replaced.ended.Store(true)
		s.sealLocked()
		for p := range s.players {
			if p.playing {
				s.addJobLocked(job{kind: jobSkip, player: p})
			}
		}
		h.publishers.Add(-1)
	}
	s.startLocked(pub, opts)
	h.publishers.Add(1)
	h.mu.Unlock()
	s.startWaitingLocked()
	s.mu.Unlock()
	s.runJobs()
	if replaced != nil {
		replaced.conn.Kick(ErrReplaced)
	}
	return pub, replaced, nil
}

// Unpublish ends pub if it is still the channel's publisher; players are
// told and keep waiting. It is safe to call more than once and reports
// whether this call ended the publication.
func (h *Hub) Unpublish(pub *Publication) bool {
	h.mu.Lock()
	s := pub.stream
	s.mu.Lock()
	ended := s.pub == pub
	if ended {
		s.endLocked(pub)
	}
	s.mu.Unlock()
	if ended {
		h.publishers.Add(-1)
		h.removeIfEmptyLocked(s)
	}
	h.mu.Unlock()
	s.runJobs() // the last packets, then the players are told
	return ended
}

// Lookup returns the channel's current publication, or nil.
func (h *Hub) Lookup(channel string) *Publication {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.streams[channel]; s != nil {
		return s.pub
	}
	return nil
}

// Kick ends the connection of the channel's publisher when match accepts
// its publication (match runs under the hub's lock and must be quick). It
// reports whether a publisher was kicked.
func (h *Hub) Kick(channel string, reason error, match func(*Publication) bool) bool {
	h.mu.Lock()
	var pub *Publication
	if s := h.streams[channel]; s != nil && s.pub != nil && (match == nil || match(s.pub)) {
		pub = s.pub
	}
	h.mu.Unlock()
	if pub == nil {
		return false
	}
	pub.conn.Kick(reason)
	return true
}

// Publications returns the current publications.
func (h *Hub) Publications() []*Publication {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*Publication, 0, len(h.streams))
	for _, s := range h.streams {
		if s.pub != nil {
			out = append(out, s.pub)
		}
	}
	return out
}

// IsPublisher reports whether conn currently publishes a stream.
func (h *Hub) IsPublisher(conn Publisher) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.streams {
		if s.pub != nil && s.pub.conn == conn {
			return true
		}
	}
	return false
}

// Play adds p to channel. If the channel is being published with p's key
// the player starts at once (waiting=false); if nobody publishes it waits
// for a publisher. A key that does not match the publisher's is ErrBadKey.
func (h *Hub) Play(channel string, p *Player) (waiting bool, err error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return false, ErrClosed
	}
	s := h.streamLocked(channel)
	s.mu.Lock()
	if s.pub != nil && !keysEqual(s.pub.Key, p.Key) {
		s.mu.Unlock()
		h.removeIfEmptyLocked(s)
		h.mu.Unlock()
		return false, ErrBadKey
	}
	s.players[p] = struct{}{}
	p.stream, p.since = s, time.Now()
	h.players.Add(1)
	s.addJobLocked(job{kind: jobAccepted, player: p})
	waiting = s.pub == nil
	if !waiting {
		s.startPlayerLocked(p)
	}
	s.mu.Unlock()
	h.mu.Unlock()
	s.runJobs() // Accepted, then the start (its GOP, written directly if it can be)
	return waiting, nil
}

// StopPlaying removes p from its stream. It is safe to call more than once.
func (h *Hub) StopPlaying(p *Player) {
	h.mu.Lock()
	s := p.stream
	if s == nil {
		h.mu.Unlock()
		return
	}
	s.mu.Lock()
	if _, ok := s.players[p]; ok {
		delete(s.players, p)
		h.players.Add(-1)
	}
	s.mu.Unlock()
	p.stream = nil
	h.removeIfEmptyLocked(s)
	h.mu.Unlock()
	// Jobs decided before may still include p: carry them out (or wait
	// for the batch in flight), so that nothing of this stream reaches p
	// after StopPlaying returns.
	s.runJobs()
}

// Close refuses new publications and players. Existing ones are ended by
// their connections; Wait then waits for the hub's goroutines.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
}

// Wait returns when the goroutines the hub started (the streams' fan-outs,
// which deliver what was published to the players) have ended. The owner
// calls it once the publications have ended, after Close: a Write
// meanwhile may start another fan-out.
func (h *Hub) Wait() { h.fanWG.Wait() }
