// Package message is the RTMP message layer: the message types, the chunk
// streams messages are sent on, user control events, and one typed value
// per message, decoded from and encoded to the chunk layer's messages.
//
// Decode turns a chunk.Message read from a peer into its typed value;
// every typed value's Chunk method encodes it back. Audio, video, data and
// aggregate messages keep their payload as it is: their typed values are
// the chunk.Message itself under another name, so decoding them costs no
// allocation or copy. Control messages and commands are decoded into their
// fields, and Decode checks them against the protocol's bounds.
//
// The builders (Status, Result, Error, UserControl…) are what the server
// and the client send; both use this package, so neither spells a message
// type, a chunk stream or an event as a number.
package message

import (
	"errors"
	"fmt"

	"github.com/rtmp-server/rtmp-server/internal/chunk"
)

// Message types of the RTMP specification. Set Chunk Size and Abort are
// defined by the chunk layer, which applies them itself.
const (
	TypeSetChunkSize           = chunk.TypeSetChunkSize
	TypeAbort                  = chunk.TypeAbort
	TypeAck              uint8 = 3
	TypeUserControl      uint8 = 4
	TypeWindowAckSize    uint8 = 5
	TypeSetPeerBandwidth uint8 = 6
	TypeAudio            uint8 = 8
	TypeVideo            uint8 = 9
	TypeDataAMF3         uint8 = 15
	TypeSharedObjectAMF3 uint8 = 16
	TypeCommandAMF3      uint8 = 17
	TypeDataAMF0         uint8 = 18
	TypeSharedObjectAMF0 uint8 = 19
	TypeCommandAMF0      uint8 = 20
	TypeAggregate        uint8 = 22
)

// Chunk stream IDs messages are sent on. Protocol control messages must
// use CSIDControl; the others are conventions peers follow (FMS, ffmpeg,
// librtmp) and any chunk stream is accepted from a peer.
const (
	CSIDControl uint32 = 2
	CSIDCommand uint32 = 3
	CSIDAudio   uint32 = 4
	CSIDData    uint32 = 5
	CSIDVideo   uint32 = 6
)

// User control event types.
const (
	EventStreamBegin      uint16 = 0
	EventStreamEOF        uint16 = 1
	EventStreamDry        uint16 = 2
	EventSetBufferLength  uint16 = 3
	EventStreamIsRecorded uint16 = 4
	EventPingRequest      uint16 = 6
	EventPingResponse     uint16 = 7
)

// Sentinel errors. Decode errors wrap one of these with details.
var (
	// ErrTruncated is a message shorter than its type's fixed fields.
	ErrTruncated = errors.New("message: truncated")
	// ErrMalformedCommand is a command message that does not decode.
	ErrMalformedCommand = errors.New("malformed command message")
)

// Message is one typed RTMP message.
type Message interface {
	// Chunk encodes the message as the chunk layer's message. For the
	// payload-carrying types it is the message itself, not a copy.
	Chunk() *chunk.Message
}

// Decode returns the typed value of m. Audio, video, data, aggregate and
// unknown messages share m (and its payload); control messages and
// commands are decoded. A control message shorter than its fields is an
// ErrTruncated error; a command that does not decode is an
// ErrMalformedCommand error, except an AMF3 command without even its
// format byte, which is ErrTruncated.
func Decode(m *chunk.Message) (Message, error) {
	switch m.Type {
	case TypeAudio, TypeVideo:
		return (*Media)(m), nil
	case TypeDataAMF0, TypeDataAMF3:
		return (*Data)(m), nil
	case TypeAggregate:
		return (*Aggregate)(m), nil
	case TypeCommandAMF0:
		return decodeCommand(m, m.Payload, false)
	case TypeCommandAMF3:
		if len(m.Payload) == 0 {
			return nil, fmt.Errorf("%w: AMF3 command without its format byte", ErrTruncated)
		}
		return decodeCommand(m, m.Payload[1:], true)
	case TypeSetChunkSize, TypeAbort, TypeAck, TypeWindowAckSize, TypeSetPeerBandwidth, TypeUserControl:
		return decodeControl(m)
	}
	return (*Unknown)(m), nil
}

// Media is an audio or video message (Type says which); its payload is
// the FLV tag body, classified by package media.
type Media chunk.Message

// Chunk returns the message itself.
func (m *Media) Chunk() *chunk.Message { return (*chunk.Message)(m) }

// Data is an AMF0 or AMF3 data message (metadata, cue points).
type Data chunk.Message

// Chunk returns the message itself.
func (m *Data) Chunk() *chunk.Message { return (*chunk.Message)(m) }

// Body returns the AMF0 values of the message: the payload, after the
// format byte of an AMF3 data message. It is empty for an AMF3 data
// message without that byte.
func (m *Data) Body() []byte {
	if m.Type == TypeDataAMF3 {
		if len(m.Payload) == 0 {
			return nil
		}
		return m.Payload[1:]
	}
	return m.Payload
}

// Unknown is a message of a type this package does not decode (shared
// objects, types the specification does not define).
type Unknown chunk.Message

// Chunk returns the message itself.
func (m *Unknown) Chunk() *chunk.Message { return (*chunk.Message)(m) }
