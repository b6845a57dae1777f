package message

import (
	"errors"
	"fmt"

	"github.com/rtmp-server/rtmp-server/internal/chunk"
)

// ErrAggregate is an aggregate message whose sub-messages do not fit it.
var ErrAggregate = errors.New("aggregate message")

// Aggregate is an aggregate message: FLV tags (audio, video, data), each
// an 11-byte header, the body and a 4-byte back pointer.
type Aggregate chunk.Message

// Chunk returns the message itself.
func (m *Aggregate) Chunk() *chunk.Message { return (*chunk.Message)(m) }

// AggregateHeaderLen is a sub-message header: type(1) size(3)
// timestamp(3+1) stream ID(3).
const AggregateHeaderLen = 11

// Each calls fn with each audio, video and AMF0 data sub-message, in
// order, on the aggregate's chunk and message streams, its timestamp
// rebased on the aggregate's (the first sub-message's is the aggregate's
// own). Sub-messages of other types are skipped. It stops at fn's first
// error, or with an ErrAggregate error at the first sub-message that does
// not fit, after passing on those before it. The payloads share m's.
func (m *Aggregate) Each(fn func(sub *chunk.Message) error) error {
	p := m.Payload
	var base uint32
	first := true
	for len(p) > 0 {
		if len(p) < AggregateHeaderLen {
			return fmt.Errorf("%w: truncated sub-message header", ErrAggregate)
		}
		typ := p[0]
		size := int(p[1])<<16 | int(p[2])<<8 | int(p[3])
		ts := uint32(p[4])<<16 | uint32(p[5])<<8 | uint32(p[6]) | uint32(p[7])<<24
		if len(p) < AggregateHeaderLen+size+4 {
			return fmt.Errorf("%w: sub-message of %d bytes overruns the message", ErrAggregate, size)
		}
		if first {
			base, first = ts, false
		}
		switch typ {
		case TypeAudio, TypeVideo, TypeDataAMF0:
			sub := &chunk.Message{ChunkStreamID: m.ChunkStreamID, Timestamp: m.Timestamp + (ts - base), Type: typ,
				StreamID: m.StreamID, Payload: p[AggregateHeaderLen : AggregateHeaderLen+size]}
			if err := fn(sub); err != nil {
				return err
			}
		}
		p = p[AggregateHeaderLen+size+4:]
	}
	return nil
}
