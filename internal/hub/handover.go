package hub

import "time"

// What a process handing its sessions to the next (see package handover)
// needs from the hub: a stream's headers to carry over, a player's state,
// and a way to put a player back on its stream without starting it again.

// HeaderPacket is a metadata message or codec header of a stream, as the
// publisher sent it.
type HeaderPacket struct {
	Type      uint8
	Timestamp uint32
	Metadata  bool
	Payload   []byte // shared: not to be changed
}

// Headers returns the metadata and codec headers that channel's players
// joining now would get first, as the publisher sent them, or nil when
// the channel has none. Written again through a new Publication (Write)
// before any player resumes, they give it the same start for later players.
func (h *Hub) Headers(channel string) []HeaderPacket {
	h.mu.Lock()
	s := h.streams[channel]
	h.mu.Unlock()
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []HeaderPacket
	for _, p := range s.headersLocked() {
		out = append(out, HeaderPacket{Type: p.Type, Timestamp: p.Timestamp, Metadata: p == s.metadata, Payload: p.payload})
	}
	return out
}

// Resume adds p to channel as a player that already has everything the
// stream sent so far: unlike Play, it is not told it was accepted and gets
// no metadata, headers or cached media, only the packets written from now
// on (from the next keyframe when skipToKeyframe). A channel without a
// publisher makes it wait, as Play does; a key that does not match the
// publisher's is ErrBadKey.
func (h *Hub) Resume(channel string, p *Player, skipToKeyframe bool) (waiting bool, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false, ErrClosed
	}
	s := h.streamLocked(channel)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pub != nil && !keysEqual(s.pub.Key, p.Key) {
		h.removeIfEmptyLocked(s)
		return false, ErrBadKey
	}
	s.players[p] = struct{}{}
	p.stream, p.since = s, time.Now()
	h.players.Add(1)
	if s.pub == nil {
		return true, nil
	}
	p.playing = true
	p.from = s.seq
	if skipToKeyframe {
		p.Queue.SkipToKeyframe()
	}
	return false, nil
}

// Paused, ReceivesAudio and ReceivesVideo report the player's settings.
func (p *Player) Paused() bool { return p.paused.Load() }

// ReceivesAudio reports receiveAudio (true unless turned off).
func (p *Player) ReceivesAudio() bool { return p.audio.Load() }

// ReceivesVideo reports receiveVideo (true unless turned off).
func (p *Player) ReceivesVideo() bool { return p.video.Load() }

// SkippingToKeyframe reports whether the queue drops media until the next
// keyframe.
func (q *Queue) SkippingToKeyframe() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.waitKeyframe
}
