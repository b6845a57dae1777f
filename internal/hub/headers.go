package hub

import (
	"bytes"
	"slices"

	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/media"
	"github.com/rtmp-server/rtmp-server/internal/message"
)

// Bounds of the codec headers a stream keeps for joining players: one per
// track, codec and kind of configuration, which an Enhanced RTMP v2
// multitrack publisher could otherwise multiply. A header beyond them is
// still forwarded to the players of the moment, not kept.
const (
	// MaxCodecHeaders bounds the tracks (with their codec) headers are
	// kept for, audio and video together.
	MaxCodecHeaders = 64
	// MaxCodecHeaderBytes bounds the bytes of the kept headers; a single
	// header of any size a message can have always fits on its own.
	MaxCodecHeaderBytes = chunk.MaxMessageSize + 1024
)

// headerKey identifies what a codec header configures.
type headerKey struct {
	typ    uint8 // message.TypeAudio or message.TypeVideo
	track  uint8
	codec  string
	config uint8 // Enhanced RTMP packet type: sequence start or multichannel configuration
}

// codecHeader is a kept codec header and the tracks it is still the latest
// header for (a multitrack header may configure several).
type codecHeader struct {
	pkt  *Packet
	keys []headerKey
}

// headerKeys lists what the sequence header pkt configures.
func headerKeys(pkt *Packet) []headerKey {
	var info media.TrackInfo
	var err error
	if pkt.Type == message.TypeVideo {
		info, err = media.VideoTracks(pkt.payload)
	} else {
		info, err = media.AudioTracks(pkt.payload)
	}
	if err != nil || len(info.Tracks) == 0 {
		// Classified a header but not parseable as tracks: the default one.
		return []headerKey{{typ: pkt.Type}}
	}
	keys := make([]headerKey, 0, len(info.Tracks))
	for _, t := range info.Tracks {
		k := headerKey{typ: pkt.Type, track: t.ID, codec: t.Codec, config: info.PacketType}
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// keepHeaderLocked keeps the sequence header pkt for joining players, in
// place of the headers it supersedes for the same tracks. It reports
// whether the GOP cache must be dropped: a video header of the default
// track (a new coded sequence starts), or one that changes another
// track's configuration (cached frames of that track no longer decode).
func (s *Stream) keepHeaderLocked(pkt *Packet) (resetGOP bool) {
	keys := headerKeys(pkt)
	s.replayOK = false
	for _, k := range keys {
		if k.typ == message.TypeVideo && k.track == media.DefaultTrack {
			resetGOP = true
		}
	}
	kept := s.headers[:0]
	for _, h := range s.headers {
		n := len(h.keys)
		h.keys = slices.DeleteFunc(h.keys, func(k headerKey) bool { return slices.Contains(keys, k) })
		if len(h.keys) < n && h.pkt.Type == message.TypeVideo && !bytes.Equal(h.pkt.payload, pkt.payload) {
			resetGOP = true
		}
		s.headerKeys -= n - len(h.keys)
		if len(h.keys) == 0 {
			s.headerBytes -= h.pkt.Size()
			continue
		}
		kept = append(kept, h)
	}
	clear(s.headers[len(kept):])
	s.headers = kept
	if s.headerKeys+len(keys) > MaxCodecHeaders || s.headerBytes+pkt.Size() > MaxCodecHeaderBytes {
		return resetGOP
	}
	s.headers = append(s.headers, codecHeader{pkt: pkt, keys: keys})
	s.headerKeys += len(keys)
	s.headerBytes += pkt.Size()
	return resetGOP
}
