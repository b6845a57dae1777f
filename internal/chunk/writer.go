package chunk

import (
	"encoding/binary"
	"io"
)

// appendBasicHeader appends a basic header of the given format for csid.
func appendBasicHeader(dst []byte, format uint8, csid uint32) []byte {
	switch {
	case csid >= 2 && csid <= 63:
		return append(dst, format<<6|byte(csid))
	case csid >= 64 && csid <= 319:
		return append(dst, format<<6, byte(csid-64))
	default:
		v := csid - 64
		return append(dst, format<<6|1, byte(v), byte(v>>8))
	}
}

// EncodedLen reports how many bytes AppendMessage adds for a payload of
// length n at the given chunk size and chunk stream ID.
func EncodedLen(n int, chunkSize uint32, csid uint32, timestamp uint32) int {
	basic := 1
	if csid >= 64 && csid <= 319 {
		basic = 2
	} else if csid < 2 || csid > 319 {
		basic = 3
	}
	ext := 0
	if timestamp >= extendedTimestamp {
		ext = 4
	}
	chunks := 1
	if n > 0 {
		chunks = (n + int(chunkSize) - 1) / int(chunkSize)
	}
	return basic + 11 + ext + (chunks-1)*(basic+ext) + n
}

// AppendMessage appends m split into chunks of chunkSize bytes: a type-0
// header, then type-3 continuation chunks. Timestamps at or above 0xFFFFFF
// are written as extended timestamps, repeated on every continuation chunk.
// chunkSize must be at least 1; csid must be 2..MaxChunkStreamID.
func AppendMessage(dst []byte, m *Message, chunkSize uint32) []byte {
	if chunkSize == 0 {
		chunkSize = DefaultChunkSize
	}
	if need := EncodedLen(len(m.Payload), chunkSize, m.ChunkStreamID, m.Timestamp); cap(dst)-len(dst) < need {
		grown := make([]byte, len(dst), len(dst)+need)
		copy(grown, dst)
		dst = grown
	}
	ts := m.Timestamp
	ext := ts >= extendedTimestamp
	field := ts
	if ext {
		field = extendedTimestamp
	}
	n := len(m.Payload)
	dst = appendBasicHeader(dst, 0, m.ChunkStreamID)
	dst = append(dst,
		byte(field>>16), byte(field>>8), byte(field),
		byte(n>>16), byte(n>>8), byte(n),
		m.Type)
	dst = binary.LittleEndian.AppendUint32(dst, m.StreamID)
	if ext {
		dst = binary.BigEndian.AppendUint32(dst, ts)
	}
	p := m.Payload
	for first := true; first || len(p) > 0; first = false {
		if !first {
			dst = appendBasicHeader(dst, 3, m.ChunkStreamID)
			if ext {
				dst = binary.BigEndian.AppendUint32(dst, ts)
			}
		}
		k := min(len(p), int(chunkSize))
		dst = append(dst, p[:k]...)
		p = p[k:]
	}
	return dst
}

// Writer writes messages to w. It is owned by one goroutine.
type Writer struct {
	w         io.Writer
	chunkSize uint32
	buf       []byte
}

// NewWriter returns a Writer with the default chunk size.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, chunkSize: DefaultChunkSize}
}

// ChunkSize reports the outgoing chunk size.
func (w *Writer) ChunkSize() uint32 { return w.chunkSize }

// SetChunkSize changes the chunk size used for later messages. The caller
// is responsible for telling the peer (a Set Chunk Size message) first.
func (w *Writer) SetChunkSize(n uint32) { w.chunkSize = n }

// WriteMessage encodes m and writes it with one Write call.
func (w *Writer) WriteMessage(m *Message) error {
	w.buf = AppendMessage(w.buf[:0], m, w.chunkSize)
	_, err := w.w.Write(w.buf)
	return err
}
