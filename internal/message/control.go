package message

import (
	"encoding/binary"
	"fmt"

	"github.com/rtmp-server/rtmp-server/internal/chunk"
)

// SetChunkSize announces the chunk size of the sender's later chunks.
type SetChunkSize struct{ Size uint32 }

// Abort tells the peer to drop the partial message on a chunk stream.
type Abort struct{ ChunkStreamID uint32 }

// Ack acknowledges the bytes received so far (modulo 2^32).
type Ack struct{ Sequence uint32 }

// WindowAckSize asks the peer to acknowledge every Size bytes it receives.
type WindowAckSize struct{ Size uint32 }

// Peer bandwidth limit types.
const (
	LimitHard    uint8 = 0
	LimitSoft    uint8 = 1
	LimitDynamic uint8 = 2
)

// SetPeerBandwidth limits the peer's output bandwidth.
type SetPeerBandwidth struct {
	Size  uint32
	Limit uint8 // LimitHard, LimitSoft or LimitDynamic
}

// UserControl is a user control event: Value is the message stream ID of
// the stream events, the timestamp of the ping events; BufferLength is the
// buffer length in milliseconds of EventSetBufferLength only.
type UserControl struct {
	Event        uint16
	Value        uint32
	BufferLength uint32
}

func control(typ uint8, payload []byte) *chunk.Message {
	return &chunk.Message{ChunkStreamID: CSIDControl, Type: typ, Payload: payload}
}

// Chunk encodes the message.
func (m SetChunkSize) Chunk() *chunk.Message {
	return control(TypeSetChunkSize, binary.BigEndian.AppendUint32(nil, m.Size))
}

// Chunk encodes the message.
func (m Abort) Chunk() *chunk.Message {
	return control(TypeAbort, binary.BigEndian.AppendUint32(nil, m.ChunkStreamID))
}

// Chunk encodes the message.
func (m Ack) Chunk() *chunk.Message {
	return control(TypeAck, binary.BigEndian.AppendUint32(nil, m.Sequence))
}

// Chunk encodes the message.
func (m WindowAckSize) Chunk() *chunk.Message {
	return control(TypeWindowAckSize, binary.BigEndian.AppendUint32(nil, m.Size))
}

// Chunk encodes the message.
func (m SetPeerBandwidth) Chunk() *chunk.Message {
	return control(TypeSetPeerBandwidth, append(binary.BigEndian.AppendUint32(nil, m.Size), m.Limit))
}

// Chunk encodes the message.
func (m UserControl) Chunk() *chunk.Message {
	p := binary.BigEndian.AppendUint16(make([]byte, 0, 10), m.Event)
	p = binary.BigEndian.AppendUint32(p, m.Value)
	if m.Event == EventSetBufferLength {
		p = binary.BigEndian.AppendUint32(p, m.BufferLength)
	}
	return control(TypeUserControl, p)
}

// decodeControl decodes a protocol control or user control message. Bytes
// past the fields are ignored, as peers are lenient about them too.
func decodeControl(m *chunk.Message) (Message, error) {
	p := m.Payload
	need := 4
	switch m.Type {
	case TypeSetPeerBandwidth:
		need = 5
	case TypeUserControl:
		need = 6
		if len(p) >= 2 && binary.BigEndian.Uint16(p) == EventSetBufferLength {
			need = 10
		}
	}
	if len(p) < need {
		return nil, fmt.Errorf("%w: message type %d of %d bytes (want %d)", ErrTruncated, m.Type, len(p), need)
	}
	v := binary.BigEndian.Uint32(p)
	switch m.Type {
	case TypeSetChunkSize:
		// The first bit is reserved and must be zero; it is ignored.
		return SetChunkSize{Size: v & 0x7FFFFFFF}, nil
	case TypeAbort:
		return Abort{ChunkStreamID: v}, nil
	case TypeAck:
		return Ack{Sequence: v}, nil
	case TypeWindowAckSize:
		return WindowAckSize{Size: v}, nil
	case TypeSetPeerBandwidth:
		return SetPeerBandwidth{Size: v, Limit: p[4]}, nil
	}
	uc := UserControl{Event: binary.BigEndian.Uint16(p), Value: binary.BigEndian.Uint32(p[2:])}
	if uc.Event == EventSetBufferLength {
		uc.BufferLength = binary.BigEndian.Uint32(p[6:])
	}
	return uc, nil
}
