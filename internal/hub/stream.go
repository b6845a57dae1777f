package hub

import (
	"sync"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/media"
	"github.com/rtmp-server/rtmp-server/internal/message"
)

// Stream is one channel: its publication (if any), its players, and what a
// joining player needs first — metadata, codec headers and the media since
// the last video keyframe (the GOP cache).
type Stream struct {
	hub     *Hub
	channel string

	mu sync.Mutex
	// pub is written with Hub.mu and mu held, so either lock suffices to read it.
	pub       *Publication
	players   map[*Player]struct{} // written with Hub.mu and mu held
	chunkSize uint32               // guarded by mu; chunk size of the current publication

	metadata    *Packet       // guarded by mu
	headers     []codecHeader // guarded by mu; in arrival order
	headerBytes int           // guarded by mu; wire size of headers' packets
	headerKeys  int           // guarded by mu; tracks headers are kept for
	gop         []*Packet     // guarded by mu; starts with a video keyframe, or is empty
	gopBytes    int64         // guarded by mu
	gopLimit    int64         // guarded by mu; 0 disables the cache
	hasVideo    bool          // guarded by mu
	hasAudio    bool          // guarded by mu
	lastVideoTS uint32        // guarded by mu; timestamp of the last video packet
	lastAudioTS uint32        // guarded by mu; timestamp of the last audio packet

	// replay is metadata and codec headers stamped with replayTS, as sent
	// to joining players; shared by those joining at the same point and
	// rebuilt when a header changes (replayOK false) or the point moves.
	replay   []*Packet // guarded by mu
	replayTS uint32    // guarded by mu
	replayOK bool      // guarded by mu

	// Fan-out: the publisher appends packets to pending; a fan-out
	// goroutine, started when pending gets its first packet, delivers
	// them to every player in batches.
	seq     uint64    // guarded by mu; sequence number of the next packet
	pending []*Packet // guarded by mu; not yet delivered to players
	fanning bool      // guarded by mu; a fan-out goroutine runs or is due

	// Everything that reaches players (batches of packets, a joining
	// player's start, stream events) is decided under mu and appended to
	// jobs, in order; it is carried out after mu is released, by whoever
	// holds fanMu (see runJobs). So no write to a player, and no player
	// event, happens under Hub.mu or mu, and each player still gets
	// everything in order. fanMu is taken with no other lock of the hub
	// held; mu may be taken while holding it.
	jobs     []job // guarded by mu; from jobsDone on: decided, not yet carried out
	jobsDone int   // guarded by mu
	spare    []job // guarded by mu; carried-out batch jobs whose slices are reused

	fanMu  sync.Mutex
	picked []*Packet // guarded by fanMu
}

// jobKind is what a job does.
type jobKind uint8

const (
	jobBatch       jobKind = iota + 1 // deliver pkts to targets
	jobStart                          // give player its first packets (pkts), then skip to a keyframe if skip
	jobAccepted                       // player.Events.Accepted
	jobStarted                        // player.Events.PublishStarted
	jobUnpublished                    // player.Events.Unpublished
	jobRejected                       // player.Events.Rejected
	jobSkip                           // player.Queue.SkipToKeyframe
)

// job is one step of what reaches players; see Stream.jobs.
type job struct {
	kind     jobKind
	player   *Player
	pkts     []*Packet
	targets  []target
	hasVideo bool // whether the stream had video when the job was decided
	skip     bool
}

// target is a player a batch is delivered to.
type target struct {
	p    *Player
	from uint64 // first packet sequence number the player has not got from the cache
}

// Fan-out coalescing. Most of the CPU of a large fan-out is the kernel's
// work per write, not per byte, so a stream with many players delivers
// batches at most every CoalescePerPlayer per player (at most
// MaxCoalesce): audio and video that arrive meanwhile reach each player in
// one write. Streams with fewer than CoalesceMinPlayers players deliver
// each packet as it arrives. The values were chosen with rtmp-bench; the
// measurements are in BENCHMARKS.md ("Engine changes made by measurement").
const (
	CoalesceMinPlayers = 200
	CoalescePerPlayer  = 40 * time.Microsecond
	MaxCoalesce        = 40 * time.Millisecond
)

// coalesceDelay is the shortest time between two batches of a stream with
// the given number of players (and how long the first waits for more).
func coalesceDelay(players int) time.Duration {
	if players < CoalesceMinPlayers {
		return 0
	}
	return min(time.Duration(players)*CoalescePerPlayer, MaxCoalesce)
}

func newStream(h *Hub, channel string) *Stream {
	return &Stream{hub: h, channel: channel, players: make(map[*Player]struct{})}
}

// startLocked installs pub and removes the waiting players whose key is
// not pub's. Both locks held; startWaitingLocked goes on with mu alone.
func (s *Stream) startLocked(pub *Publication, opts PublishOptions) {
	s.pub = pub
	s.chunkSize = opts.ChunkSize
	if s.chunkSize == 0 {
		s.chunkSize = chunk.DefaultChunkSize
	}
	s.gopLimit = max(opts.GOPCacheBytes, 0)
	s.clearMediaStateLocked()
	for p := range s.players {
		if !p.playing && !keysEqual(p.Key, pub.Key) {
			delete(s.players, p)
			s.hub.players.Add(-1)
			p.stream = nil
			s.addJobLocked(job{kind: jobRejected, player: p})
		}
	}
}

// startWaitingLocked starts the players that waited for a publisher. mu
// held (Hub.mu need not be: membership does not change).
func (s *Stream) startWaitingLocked() {
	for p := range s.players {
		if !p.playing {
			s.addJobLocked(job{kind: jobStarted, player: p})
			s.startPlayerLocked(p)
		}
	}
}

// endLocked detaches pub; players are told and wait for the next publisher.
func (s *Stream) endLocked(pub *Publication) {
	pub.ended.Store(true)
	s.sealLocked()
	s.pub = nil
	s.clearMediaStateLocked()
	for p := range s.players {
		if p.playing {
			p.playing = false
			s.addJobLocked(job{kind: jobUnpublished, player: p})
		}
	}
}

// clearMediaStateLocked forgets what the last publication sent.
func (s *Stream) clearMediaStateLocked() {
	s.metadata = nil
	clear(s.headers)
	s.headers, s.headerBytes, s.headerKeys = s.headers[:0], 0, 0
	s.resetGOPLocked()
	s.hasVideo, s.hasAudio = false, false
	s.lastVideoTS, s.lastAudioTS = 0, 0
	clear(s.replay)
	s.replay, s.replayOK = s.replay[:0], false
}

func (s *Stream) resetGOPLocked() {
	clear(s.gop)
	s.gop = s.gop[:0]
	s.hub.gopBytes.Add(-s.gopBytes)
	s.gopBytes = 0
}

// startPlayerLocked decides what a joining player gets first, then marks
// it playing. It all goes in one push (a job carried out after the locks
// are released): a player that keeps up gets it in one write.
//
// Metadata and codec headers come first, stamped with the timestamp of
// the media that follows them (see replayTimestampLocked), whatever
// timestamps they were sent with: players take their clock from the first
// message they get and must not see time go backwards.
func (s *Stream) startPlayerLocked(p *Player) {
	p.playing = true
	p.from = s.seq // pending packets are in the cache
	if p.ClearCache {
		s.resetGOPLocked()
		s.gopLimit = 0
	}
	var cached []*Packet
	fromCache := !p.NoCache && len(s.gop) > 0
	if fromCache {
		cached = make([]*Packet, 0, len(s.gop))
		for _, pkt := range s.gop {
			if p.wants(pkt) {
				cached = append(cached, pkt)
			}
		}
	}
	ts := s.replayTimestampLocked(cached)
	headers := s.headersAtLocked(ts)
	start := make([]*Packet, 0, len(headers)+len(cached))
	start = append(append(start, headers...), cached...)
	// Without the cache: headers first, then media from the next keyframe on.
	s.addJobLocked(job{kind: jobStart, player: p, pkts: start, hasVideo: s.hasVideo, skip: !fromCache && s.hasVideo})
}

// replayTimestampLocked is the timestamp a joining player's headers are
// stamped with: that of the first cached packet it gets or, when it
// starts with live media, one no later than that media's: the last
// video timestamp (video timestamps do not decrease, and the player
// starts at the next keyframe) or, for a stream without video, the last
// audio one. Before any media, it is the earliest header's.
func (s *Stream) replayTimestampLocked(cached []*Packet) uint32 {
	switch {
	case len(cached) > 0:
		return cached[0].Timestamp
	case s.hasVideo:
		return s.lastVideoTS
	case s.hasAudio:
		return s.lastAudioTS
	}
	var ts uint32
	for i, h := range s.headersLocked() {
		if i == 0 || h.Timestamp < ts {
			ts = h.Timestamp
		}
	}
	return ts
}

// headersLocked returns the metadata and codec headers a joining player
// needs, in the order it gets them (metadata, video headers, audio
// headers, each in the order they arrived), as the publisher sent them.
func (s *Stream) headersLocked() []*Packet {
	out := make([]*Packet, 0, 1+len(s.headers))
	if s.metadata != nil {
		out = append(out, s.metadata)
	}
	for _, typ := range []uint8{message.TypeVideo, message.TypeAudio} {
		for _, h := range s.headers {
			if h.pkt.Type == typ {
				out = append(out, h.pkt)
			}
		}
	}
	return out
}

// headersAtLocked returns headersLocked stamped with ts. The slice is the
// stream's: the caller copies it.
func (s *Stream) headersAtLocked(ts uint32) []*Packet {
	if s.replayOK && s.replayTS == ts {
		return s.replay
	}
	clear(s.replay)
	s.replay = s.replay[:0]
	for _, h := range s.headersLocked() {
		s.replay = append(s.replay, h.restamped(ts))
	}
	s.replayTS, s.replayOK = ts, true
	return s.replay
}

func (p *Player) wants(pkt *Packet) bool {
	if p.paused.Load() {
		return false
	}
	switch pkt.Type {
	case message.TypeAudio:
		return p.audio.Load()
	case message.TypeVideo:
		return p.video.Load() || pkt.Kind == media.SequenceHeader
	}
	return true
}

// Write publishes one message: audio, video, or a data message (metadata
// when isMetadata). It reports false when pub is no longer the publisher
// (it was replaced or ended); the caller should stop.
func (pub *Publication) Write(typ uint8, timestamp uint32, payload []byte, isMetadata bool) bool {
	s := pub.stream
	s.hub.bytesIn.Add(uint64(len(payload)))
	s.hub.messagesIn.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pub != pub {
		return false
	}
	pkt := NewPacket(typ, timestamp, payload, s.chunkSize)
	pub.stats.record(pkt, payload, time.Now())
	pkt.seq = s.seq
	s.seq++
	s.cacheLocked(pkt, isMetadata)
	if len(s.players) == 0 {
		return true // while published, every player of the stream plays it
	}
	s.pending = append(s.pending, pkt)
	if !s.fanning {
		s.fanning = true
		s.hub.fanWG.Add(1)
		go s.fanOut(coalesceDelay(len(s.players)))
	}
	return true
}

// Sync delivers what was written so far to the players now, without
// waiting for the coalescing delay, and returns once it is in their queues
// (or written to them).
func (pub *Publication) Sync() {
	s := pub.stream
	s.mu.Lock()
	s.sealLocked()
	s.mu.Unlock()
	s.runJobs()
}

// fanOut delivers pending packets, after waiting delay for more to
// arrive, until there are none. Hub.Wait waits for it.
func (s *Stream) fanOut(delay time.Duration) {
	defer s.hub.fanWG.Done()
	for {
		if delay > 0 {
			time.Sleep(delay)
		}
		s.mu.Lock()
		if len(s.pending) == 0 {
			s.fanning = false
			s.mu.Unlock()
			return
		}
		interval := coalesceDelay(len(s.players))
		taken := time.Now()
		s.sealLocked()
		s.mu.Unlock()
		s.runJobs()
		delay = interval - time.Since(taken)
	}
}

// addJobLocked appends j to the jobs. mu held.
func (s *Stream) addJobLocked(j job) {
	s.jobs = append(s.jobs, j)
}

// sealLocked turns the pending packets into a batch job for the players
// playing now. mu held.
func (s *Stream) sealLocked() {
	if len(s.pending) == 0 {
		return
	}
	j := job{kind: jobBatch, hasVideo: s.hasVideo}
	if n := len(s.spare); n > 0 {
		j.pkts, j.targets = s.spare[n-1].pkts, s.spare[n-1].targets
		s.spare = s.spare[:n-1]
	}
	j.pkts = append(j.pkts, s.pending...)
	clear(s.pending)
	s.pending = s.pending[:0]
	for p := range s.players {
		if p.playing {
			j.targets = append(j.targets, target{p: p, from: p.from})
		}
	}
	s.addJobLocked(j)
}

// maxSpareJobs bounds the batch buffers a stream keeps for reuse, and
// maxKeptJobs the job list it keeps once drained.
const (
	maxSpareJobs = 2
	maxKeptJobs  = 64
)

// runJobs carries out the stream's jobs in order until none is left, with
// no lock but fanMu held (and mu only to take the next job). When it
// returns, every job decided before the call has been carried out, by
// this goroutine or by the one that held fanMu before it.
func (s *Stream) runJobs() {
	s.fanMu.Lock()
	defer s.fanMu.Unlock()
	for {
		s.mu.Lock()
		if s.jobsDone == len(s.jobs) {
			s.jobs, s.jobsDone = s.jobs[:0], 0
			if cap(s.jobs) > maxKeptJobs {
				s.jobs = nil // after a burst (an end with many players)
			}
			s.mu.Unlock()
			return
		}
		j := s.jobs[s.jobsDone]
		s.jobs[s.jobsDone] = job{}
		s.jobsDone++
		s.mu.Unlock()
		s.runJob(&j)
		if j.kind == jobBatch {
			clear(j.pkts)
			clear(j.targets)
			s.mu.Lock()
			if len(s.spare) < maxSpareJobs {
				s.spare = append(s.spare, job{pkts: j.pkts[:0], targets: j.targets[:0]})
			}
			s.mu.Unlock()
		}
	}
}

// runJob carries out one job. fanMu held, no other lock of the hub.
func (s *Stream) runJob(j *job) {
	p := j.player
	switch j.kind {
	case jobBatch:
		s.deliverBatch(j)
	case jobStart:
		p.Queue.PushMediaBatch(j.pkts, j.hasVideo, time.Now())
		if j.skip {
			p.Queue.SkipToKeyframe()
		}
	case jobAccepted:
		p.Events.Accepted()
	case jobStarted:
		p.Events.PublishStarted()
	case jobUnpublished:
		p.Events.Unpublished()
	case jobRejected:
		p.Events.Rejected(ErrBadKey)
	case jobSkip:
		p.Queue.SkipToKeyframe()
	}
}

// deliverBatch gives each target the packets of the batch it wants, in
// one push. fanMu held. Pushes do not block: a player whose socket is full
// gets them queued. (Splitting a large fan-out among goroutines was
// measured and did not help: on a loaded machine the players' own reads
// need the other cores.)
func (s *Stream) deliverBatch(j *job) {
	now := time.Now()
	for _, t := range j.targets {
		picked := s.picked[:0]
		for _, pkt := range j.pkts {
			if pkt.seq >= t.from && t.p.wants(pkt) {
				picked = append(picked, pkt)
			}
		}
		if len(picked) > 0 {
			t.p.Queue.PushMediaBatch(picked, j.hasVideo, now)
		}
		s.picked = picked
	}
	clear(s.picked)
	s.picked = s.picked[:0]
}

// cacheLocked records pkt in the stream state a joining player receives.
func (s *Stream) cacheLocked(pkt *Packet, isMetadata bool) {
	switch {
	case isMetadata:
		s.metadata = pkt
		s.replayOK = false
		return
	case pkt.Type == message.TypeVideo:
		s.hasVideo = true
		s.lastVideoTS = pkt.Timestamp
		switch pkt.Kind {
		case media.SequenceHeader:
			if s.keepHeaderLocked(pkt) {
				s.resetGOPLocked()
			}
			return
		case media.Keyframe:
			s.resetGOPLocked()
		}
	case pkt.Type == message.TypeAudio:
		s.hasAudio = true
		s.lastAudioTS = pkt.Timestamp
		if pkt.Kind == media.SequenceHeader {
			s.keepHeaderLocked(pkt)
			return
		}
	}
	if s.gopLimit == 0 || (len(s.gop) == 0 && pkt.Kind != media.Keyframe) {
		return
	}
	size := int64(pkt.Size())
	budget := s.hub.gopBudget.Load()
	if s.gopBytes+size > s.gopLimit || budget > 0 && s.hub.gopBytes.Load()+size > budget {
		// Too big to keep whole (for this stream or for all of them): keep
		// nothing until the next keyframe rather than a GOP without its
		// keyframe.
		s.resetGOPLocked()
		return
	}
	s.gop = append(s.gop, pkt)
	s.gopBytes += size
	s.hub.gopBytes.Add(size)
}

// Ended reports whether the publication was unpublished or replaced.
func (pub *Publication) Ended() bool { return pub.ended.Load() }
