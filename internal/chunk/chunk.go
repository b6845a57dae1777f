// Package chunk implements the RTMP chunk stream: it splits messages into
// chunks for the wire and reassembles chunks read from a peer into messages.
//
// The Reader accepts everything the specification allows: all four chunk
// header types, 1-, 2- and 3-byte chunk stream IDs, extended timestamps
// (also on type-3 chunks) and timestamps that wrap past 0xFFFFFF. Every size
// a peer can claim is checked against a named limit before memory is used.
//
// The encoder writes every message with a type-0 header, so an encoded
// message does not depend on what was sent before it on the connection. That
// lets a media message be encoded once and the same bytes be queued to every
// player.
package chunk

import "errors"

// The protocol control messages of the chunk layer, which the Reader
// applies itself; package message defines the other message types.
const (
	TypeSetChunkSize uint8 = 1
	TypeAbort        uint8 = 2
)

// Limits on what a peer may claim.
const (
	// DefaultChunkSize is the chunk size both directions start with.
	DefaultChunkSize = 128
	// MaxChunkSize is the largest Set Chunk Size accepted (the specification's 2^24-1 bound).
	MaxChunkSize = 1<<24 - 1
	// MaxMessageSize bounds one message's length; the 3-byte length field cannot say more.
	MaxMessageSize = 1<<24 - 1
	// MaxChunkStreams bounds the chunk streams a peer may have messages in flight on.
	MaxChunkStreams = 64
	// MaxPartialBytes bounds the payload of all unfinished messages of a
	// connection together: one largest message's worth, so a peer cannot
	// pin MaxChunkStreams × MaxMessageSize by leaving messages open.
	MaxPartialBytes = MaxMessageSize
	// MaxChunkStreamID is the largest ID the 3-byte basic header can carry.
	MaxChunkStreamID = 65599
	// extendedTimestamp is the 3-byte timestamp value that says "read 4 more bytes".
	extendedTimestamp = 0xFFFFFF
)

// Sentinel errors. Reader errors wrap one of these with details.
var (
	ErrChunkSize        = errors.New("chunk: invalid chunk size")
	ErrTooManyStreams   = errors.New("chunk: too many chunk streams in flight")
	ErrNoPreviousHeader = errors.New("chunk: compressed header without a previous header")
	ErrMessageSize      = errors.New("chunk: message length changed mid-message")
	ErrTooMuchPartial   = errors.New("chunk: unfinished messages exceed MaxPartialBytes")
	ErrBadState         = errors.New("chunk: invalid reader state")
)

// Message is one RTMP message.
type Message struct {
	ChunkStreamID uint32
	// Timestamp is the absolute timestamp in milliseconds; it wraps modulo 2^32.
	Timestamp uint32
	Type      uint8
	StreamID  uint32
	Payload   []byte
}
