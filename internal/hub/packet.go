package hub

import (
	"encoding/binary"
	"sync"

	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/media"
	"github.com/rtmp-server/rtmp-server/internal/message"
)

// Chunk stream IDs used for media sent to players.
const (
	csidAudio = message.CSIDAudio
	csidData  = message.CSIDData
	csidVideo = message.CSIDVideo
)

// WireStreamID is the message stream ID media is encoded for. Players whose
// play stream has another ID get a patched copy (see Packet.Wire).
const WireStreamID = 1

// Packet is one audio, video or data message of a stream. It is encoded
// into chunks once, by the first player that needs it (a stream nobody
// plays is never encoded), and shared by the GOP cache and by every player
// queue that holds it. Its exported fields are immutable.
type Packet struct {
	Type      uint8 // message.TypeAudio, message.TypeVideo or message.TypeDataAMF0
	Timestamp uint32
	Kind      media.Kind
	ChunkSize uint32 // the chunk size the wire form uses
	size      int    // length of the wire form
	csid      uint32
	seq       uint64 // position in the stream, set by Publication.Write

	encode  sync.Once
	payload []byte // until encoded, or for good when replayable
	wire    []byte // type-0 chunk header + payload chunks for WireStreamID; set by encode
	// replayable packets (codec headers and metadata) keep their payload
	// after encoding, so that a joining player can be sent a copy stamped
	// with another timestamp (see restamped). Immutable.
	replayable bool
}

// basicHeaderLen is the length of the basic header for the chunk stream
// IDs used here (all below 64), to find the stream ID field.
const basicHeaderLen = 1

// NewPacket classifies payload for the given chunk size. payload must not
// change afterwards.
func NewPacket(typ uint8, timestamp uint32, payload []byte, chunkSize uint32) *Packet {
	p := &Packet{Type: typ, Timestamp: timestamp, ChunkSize: chunkSize, payload: payload, csid: csidData}
	switch typ {
	case message.TypeAudio:
		p.Kind = media.AudioKind(payload)
		p.csid = csidAudio
	case message.TypeVideo:
		p.Kind = media.VideoKind(payload)
		p.csid = csidVideo
	default:
		p.Kind = media.Info
	}
	p.replayable = p.essential()
	p.size = chunk.EncodedLen(len(payload), chunkSize, p.csid, timestamp)
	return p
}

// restamped returns p at timestamp ts: the same message, encoded on its
// own, for a joining player that must not see time go backwards. It
// returns p itself when the timestamp is the same or p is not replayable.
func (p *Packet) restamped(ts uint32) *Packet {
	if p.Timestamp == ts || !p.replayable {
		return p
	}
	return &Packet{
		Type: p.Type, Timestamp: ts, Kind: p.Kind, ChunkSize: p.ChunkSize, csid: p.csid, seq: p.seq,
		payload: p.payload, replayable: true,
		size: chunk.EncodedLen(len(p.payload), p.ChunkSize, p.csid, ts),
	}
}

// Size is the number of bytes the packet takes on the wire.
func (p *Packet) Size() int { return p.size }

// Wire returns the encoded chunks for a play stream with the given message
// stream ID. For WireStreamID it is the shared buffer, which must not be
// modified; otherwise a copy with the stream ID patched.
func (p *Packet) Wire(streamID uint32) []byte {
	p.encode.Do(func() {
		p.wire = chunk.AppendMessage(make([]byte, 0, p.size), &chunk.Message{
			ChunkStreamID: p.csid, Timestamp: p.Timestamp, Type: p.Type, StreamID: WireStreamID, Payload: p.payload,
		}, p.ChunkSize)
		if !p.replayable {
			p.payload = nil
		}
	})
	if streamID == WireStreamID {
		return p.wire
	}
	b := append([]byte(nil), p.wire...)
	// Type-0 header: basic header, 3 timestamp, 3 length, 1 type, then the stream ID.
	binary.LittleEndian.PutUint32(b[basicHeaderLen+7:], streamID)
	return b
}

// essential reports whether p must reach a player even while it skips
// ahead: codec configuration and metadata are small and needed to decode.
func (p *Packet) essential() bool {
	return p.Kind == media.SequenceHeader || p.Type == message.TypeDataAMF0
}

// resumes reports whether a player that skipped ahead may start again at p.
func (p *Packet) resumes(hasVideo bool) bool {
	if p.Type == message.TypeVideo {
		return p.Kind == media.Keyframe
	}
	return !hasVideo
}
