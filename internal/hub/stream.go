package hub

import (
	"sync"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/media"
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

	metadata    *Packet   // guarded by mu
	audioHeader *Packet   // guarded by mu
	videoHeader *Packet   // guarded by mu
	gop         []*Packet // guarded by mu; starts with a video keyframe, or is empty
	gopBytes    int64     // guarded by mu
	gopLimit    int64     // guarded by mu; 0 disables the cache
	hasVideo    bool      // guarded by mu
}

func newStream(h *Hub, channel string) *Stream {
	return &Stream{hub: h, channel: channel, players: make(map[*Player]struct{})}
}

// startLocked installs pub and starts the waiting players. Both locks held.
func (s *Stream) startLocked(pub *Publication, opts PublishOptions) {
	s.pub = pub
	s.chunkSize = opts.ChunkSize
	if s.chunkSize == 0 {
		s.chunkSize = chunk.DefaultChunkSize
	}
	s.gopLimit = max(opts.GOPCacheBytes, 0)
	s.metadata, s.audioHeader, s.videoHeader = nil, nil, nil
	s.resetGOPLocked()
	s.hasVideo = false
	for p := range s.players {
		if p.playing {
			continue
		}
		if !keysEqual(p.Key, pub.Key) {
			delete(s.players, p)
			s.hub.players.Add(-1)
			p.stream = nil
			p.Events.Rejected(ErrBadKey)
			continue
		}
		p.Events.PublishStarted()
		s.startPlayerLocked(p)
	}
}

// endLocked detaches pub; players are told and wait for the next publisher.
func (s *Stream) endLocked(pub *Publication) {
	pub.ended.Store(true)
	s.pub = nil
	s.metadata, s.audioHeader, s.videoHeader = nil, nil, nil
	s.resetGOPLocked()
	for p := range s.players {
		if p.playing {
			p.playing = false
			p.Events.Unpublished()
		}
	}
}

func (s *Stream) resetGOPLocked() {
	clear(s.gop)
	s.gop = s.gop[:0]
	s.hub.gopBytes.Add(-s.gopBytes)
	s.gopBytes = 0
}

// startPlayerLocked queues what a joining player needs, then marks it playing.
func (s *Stream) startPlayerLocked(p *Player) {
	p.playing = true
	now := time.Now()
	if p.ClearCache {
		s.resetGOPLocked()
		s.gopLimit = 0
	}
	for _, h := range []*Packet{s.metadata, s.videoHeader, s.audioHeader} {
		if h != nil {
			p.Queue.PushMedia(h, s.hasVideo, now)
		}
	}
	if p.NoCache || len(s.gop) == 0 {
		if s.hasVideo {
			p.Queue.SkipToKeyframe()
		}
		return
	}
	for _, pkt := range s.gop {
		if p.wants(pkt) {
			p.Queue.PushMedia(pkt, s.hasVideo, now)
		}
	}
}

func (p *Player) wants(pkt *Packet) bool {
	if p.paused.Load() {
		return false
	}
	switch pkt.Type {
	case chunk.TypeAudio:
		return p.audio.Load()
	case chunk.TypeVideo:
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
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pub != pub {
		return false
	}
	pkt := NewPacket(typ, timestamp, payload, s.chunkSize)
	s.cacheLocked(pkt, isMetadata)
	now := time.Now()
	for p := range s.players {
		if p.playing && p.wants(pkt) {
			p.Queue.PushMedia(pkt, s.hasVideo, now)
		}
	}
	return true
}

// cacheLocked records pkt in the stream state a joining player receives.
func (s *Stream) cacheLocked(pkt *Packet, isMetadata bool) {
	switch {
	case isMetadata:
		s.metadata = pkt
		return
	case pkt.Type == chunk.TypeVideo:
		s.hasVideo = true
		switch pkt.Kind {
		case media.SequenceHeader:
			s.videoHeader = pkt
			s.resetGOPLocked()
			return
		case media.Keyframe:
			s.resetGOPLocked()
		}
	case pkt.Type == chunk.TypeAudio && pkt.Kind == media.SequenceHeader:
		s.audioHeader = pkt
		return
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
