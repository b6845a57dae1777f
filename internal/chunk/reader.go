package chunk

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// How much is allocated for a message before its bytes arrive. A message
// up to maxPrealloc gets its whole length at once, as long as the partial
// messages of the connection hold less than maxReserved; otherwise it
// starts at initialPayloadAlloc and grows as chunks are read, so a peer
// that claims large messages costs only what it sends.
const (
	initialPayloadAlloc = 64 << 10
	maxPrealloc         = 1 << 20
	maxReserved         = 4 << 20
)

// inStream is the state of one incoming chunk stream.
type inStream struct {
	timestamp uint32 // absolute timestamp of the current message
	delta     uint32 // last timestamp field (absolute for type 0), reused by type 3
	length    uint32
	typ       uint8
	streamID  uint32
	extended  bool // the last header carried an extended timestamp
	hasHeader bool
	payload   []byte // message being assembled; nil between messages
	reserved  int    // bytes allocated up front for payload
}

// Reader reassembles messages from chunks. It is owned by one goroutine.
//
// Set Chunk Size and Abort messages are applied by the Reader itself and are
// also returned, so the caller can log them.
type Reader struct {
	r         *bufio.Reader
	chunkSize uint32
	low       [64]*inStream        // chunk streams 0..63, the ones peers use
	streams   map[uint32]*inStream // the others, and all of them for counting
	inFlight  int                  // streams with a partial message
	reserved  int                  // bytes allocated up front for partial messages
	partial   int                  // payload bytes read into partial messages
	bytesRead uint64               // bytes consumed, for acknowledgements
	hdr       [16]byte
	// A chunk whose payload a read error cut short: the next call goes on
	// with its rest (left bytes into cont's message) instead of a header.
	cont     *inStream
	contCSID uint32
	contLeft int
	// held is what Rebuffer took over from the previous buffer and the
	// new one has not read yet (see Unread).
	held *bytes.Reader
}

// NewReader returns a Reader reading from r with the default chunk size. A
// *bufio.Reader is used as it is, so bytes it already buffered (for example
// after the handshake) are not lost.
func NewReader(r io.Reader) *Reader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &Reader{r: br, chunkSize: DefaultChunkSize, streams: make(map[uint32]*inStream)}
}

// Rebuffer makes the Reader read src through a buffer of size bytes,
// keeping what the current buffer already holds. The server starts
// connections with a small buffer (idle players are many) and gives
// publishers a large one.
func (r *Reader) Rebuffer(src io.Reader, size int) {
	if size <= r.r.Size() {
		return
	}
	var from io.Reader = src
	if n := r.r.Buffered(); n > 0 {
		held, _ := r.r.Peek(n)
		r.held = bytes.NewReader(bytes.Clone(held))
		from = io.MultiReader(r.held, src)
	}
	r.r = bufio.NewReaderSize(from, size)
}

// Unread returns a copy of the bytes the Reader has taken from its source
// and not consumed: a resumed Reader reads them first. Between chunks
// (after a message, or after ReadMessage failed on its source) they are
// the start of the next chunk.
func (r *Reader) Unread() []byte {
	n := r.r.Buffered()
	buffered, _ := r.r.Peek(n)
	out := bytes.Clone(buffered)
	if r.held != nil && r.held.Len() > 0 {
		rest := make([]byte, r.held.Len())
		_, _ = io.ReadFull(io.NewSectionReader(r.held, r.held.Size()-int64(r.held.Len()), int64(r.held.Len())), rest)
		out = append(out, rest...)
	}
	if out == nil {
		out = []byte{}
	}
	return out
}

// ChunkSize reports the current incoming chunk size.
func (r *Reader) ChunkSize() uint32 { return r.chunkSize }

// SetChunkSize changes the incoming chunk size.
func (r *Reader) SetChunkSize(n uint32) error {
	if n < 1 || n > MaxChunkSize {
		return fmt.Errorf("%w: %d (want 1..%d)", ErrChunkSize, n, MaxChunkSize)
	}
	r.chunkSize = n
	return nil
}

// BytesRead reports how many bytes the Reader has consumed so far.
func (r *Reader) BytesRead() uint64 { return r.bytesRead }

func (r *Reader) readFull(b []byte) error {
	n, err := io.ReadFull(r.r, b)
	r.bytesRead += uint64(n)
	if err == io.EOF && n == 0 {
		return io.EOF
	}
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ReadMessage reads chunks until one message is complete and returns it.
// The returned payload is owned by the caller and never reused.
func (r *Reader) ReadMessage() (*Message, error) {
	for {
		m, err := r.readChunk()
		if err != nil {
			return nil, err
		}
		if m == nil {
			continue
		}
		if err := r.apply(m); err != nil {
			return nil, err
		}
		return m, nil
	}
}

// apply handles the protocol control messages that change how chunks are read.
func (r *Reader) apply(m *Message) error {
	switch m.Type {
	case TypeSetChunkSize:
		if len(m.Payload) < 4 {
			return fmt.Errorf("%w: Set Chunk Size payload of %d bytes", ErrChunkSize, len(m.Payload))
		}
		return r.SetChunkSize(binary.BigEndian.Uint32(m.Payload) & 0x7FFFFFFF)
	case TypeAbort:
		if len(m.Payload) < 4 {
			return nil
		}
		if s, ok := r.streams[binary.BigEndian.Uint32(m.Payload)]; ok && s.payload != nil {
			r.release(s)
		}
	}
	return nil
}

// readChunk reads one chunk; it returns a message when that chunk completed
// one. It runs in three steps: the header (basic header, then the message
// header of the chunk's format), the reservation of a new message's
// payload, and the payload bytes the chunk carries.
func (r *Reader) readChunk() (*Message, error) {
	if r.contLeft > 0 {
		return r.readPayload(r.cont, r.contCSID, r.contLeft)
	}
	// The whole header is buffered before any of it is consumed: a read
	// error (a deadline) in the middle of a header leaves the Reader at
	// the chunk's start, as a state to save.
	csid, err := r.peekHeader()
	if err != nil {
		return nil, err
	}
	format, _, err := r.readBasicHeader()
	if err != nil {
		return nil, err
	}
	s, err := r.inStream(csid)
	if err != nil {
		return nil, err
	}
	if format != 0 && !s.hasHeader {
		return nil, fmt.Errorf("%w: type %d on chunk stream %d", ErrNoPreviousHeader, format, csid)
	}
	newMessage := s.payload == nil
	var tsField uint32
	switch format {
	case 0:
		tsField, err = r.readType0(s, csid, newMessage)
	case 1:
		tsField, err = r.readType1(s, csid, newMessage)
	case 2:
		tsField, err = r.readType2(s)
	default:
		tsField, err = r.readType3(s)
	}
	if err != nil {
		return nil, err
	}
	if newMessage {
		if err := r.startMessage(s, format == 0, tsField); err != nil {
			return nil, err
		}
	}
	return r.readPayload(s, csid, min(int(s.length)-len(s.payload), int(r.chunkSize)))
}

// messageHeaderLen is the length of the message header of each chunk
// format.
var messageHeaderLen = [4]int{11, 7, 3, 0}

// peekHeader waits until the next chunk's whole header (basic header,
// message header and extended timestamp) is buffered, without consuming
// anything, and returns its chunk stream ID. An error at the chunk's
// start is io.EOF, within the header io.ErrUnexpectedEOF or the source's.
func (r *Reader) peekHeader() (uint32, error) {
	b, err := r.peek(1)
	if err != nil {
		return 0, err
	}
	format := b[0] >> 6
	basic := 1
	switch b[0] & 0x3F {
	case 0:
		basic = 2
	case 1:
		basic = 3
	}
	n := basic + messageHeaderLen[format]
	if b, err = r.peek(n); err != nil {
		return 0, err
	}
	csid := uint32(b[0] & 0x3F)
	switch basic {
	case 2:
		csid = 64 + uint32(b[1])
	case 3:
		csid = 64 + uint32(b[1]) + uint32(b[2])<<8
	}
	extended := false
	if format < 3 {
		extended = uint24(b[basic:basic+3]) == extendedTimestamp
	} else if s := r.lookup(csid); s != nil {
		extended = s.extended
	}
	if extended {
		if _, err := r.peek(n + 4); err != nil {
			return 0, err
		}
	}
	return csid, nil
}

// peek returns the next n buffered bytes, reading more from the source if
// needed, without consuming them.
func (r *Reader) peek(n int) ([]byte, error) {
	b, err := r.r.Peek(n)
	if err == nil {
		return b, nil
	}
	if err == io.EOF {
		if r.r.Buffered() == 0 {
			return nil, io.EOF
		}
		return nil, io.ErrUnexpectedEOF
	}
	return nil, err
}

// lookup returns the state of chunk stream csid, or nil.
func (r *Reader) lookup(csid uint32) *inStream {
	if csid < uint32(len(r.low)) {
		return r.low[csid]
	}
	return r.streams[csid]
}

// readBasicHeader reads the chunk's format and chunk stream ID (1 to 3 bytes).
func (r *Reader) readBasicHeader() (format uint8, csid uint32, err error) {
	if err := r.readFull(r.hdr[:1]); err != nil {
		return 0, 0, err
	}
	format = r.hdr[0] >> 6
	csid = uint32(r.hdr[0] & 0x3F)
	switch csid {
	case 0:
		if err := r.readFull(r.hdr[1:2]); err != nil {
			return 0, 0, err
		}
		csid = 64 + uint32(r.hdr[1])
	case 1:
		if err := r.readFull(r.hdr[1:3]); err != nil {
			return 0, 0, err
		}
		csid = 64 + uint32(r.hdr[1]) + uint32(r.hdr[2])<<8
	}
	return format, csid, nil
}

// inStream returns the state of chunk stream csid, creating it while the
// connection has fewer than MaxChunkStreams.
func (r *Reader) inStream(csid uint32) (*inStream, error) {
	var s *inStream
	if csid < uint32(len(r.low)) {
		s = r.low[csid]
	} else {
		s = r.streams[csid]
	}
	if s != nil {
		return s, nil
	}
	if len(r.streams) >= MaxChunkStreams {
		return nil, fmt.Errorf("%w: more than %d", ErrTooManyStreams, MaxChunkStreams)
	}
	s = &inStream{}
	r.streams[csid] = s
	if csid < uint32(len(r.low)) {
		r.low[csid] = s
	}
	return s, nil
}

// readType0 reads a type-0 message header (timestamp, length, type and
// message stream ID) and returns its timestamp field, an absolute timestamp.
func (r *Reader) readType0(s *inStream, csid uint32, newMessage bool) (uint32, error) {
	b := r.hdr[:11]
	if err := r.readFull(b); err != nil {
		return 0, err
	}
	if err := s.setLength(uint24(b[3:6]), csid, newMessage); err != nil {
		return 0, err
	}
	s.typ = b[6]
	s.streamID = binary.LittleEndian.Uint32(b[7:11])
	return r.readTimestamp(s, uint24(b[0:3]))
}

// readType1 reads a type-1 message header (timestamp delta, length and
// type; the message stream ID is the previous one's) and returns the delta.
func (r *Reader) readType1(s *inStream, csid uint32, newMessage bool) (uint32, error) {
	b := r.hdr[:7]
	if err := r.readFull(b); err != nil {
		return 0, err
	}
	if err := s.setLength(uint24(b[3:6]), csid, newMessage); err != nil {
		return 0, err
	}
	s.typ = b[6]
	return r.readTimestamp(s, uint24(b[0:3]))
}

// readType2 reads a type-2 message header (a timestamp delta only) and
// returns the delta.
func (r *Reader) readType2(s *inStream) (uint32, error) {
	b := r.hdr[:3]
	if err := r.readFull(b); err != nil {
		return 0, err
	}
	return r.readTimestamp(s, uint24(b))
}

// readType3 handles a type-3 chunk, which has no message header: it
// continues a message, or starts one like the previous, with the previous
// timestamp field. It repeats the extended timestamp of the header it
// continues, which is read and ignored.
func (r *Reader) readType3(s *inStream) (uint32, error) {
	if s.extended {
		if err := r.readFull(r.hdr[:4]); err != nil {
			return 0, err
		}
	}
	return s.delta, nil
}

// readTimestamp returns a header's timestamp field: the 3-byte field, or the
// extended timestamp that follows the header when that field says so.
func (r *Reader) readTimestamp(s *inStream, field uint32) (uint32, error) {
	s.extended = field == extendedTimestamp
	if !s.extended {
		return field, nil
	}
	if err := r.readFull(r.hdr[:4]); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(r.hdr[:4]), nil
}

// setLength records a type-0 or type-1 header's message length; within a
// message it must not change.
func (s *inStream) setLength(length, csid uint32, newMessage bool) error {
	if !newMessage && length != s.length {
		return fmt.Errorf("%w: chunk stream %d", ErrMessageSize, csid)
	}
	s.length = length
	return nil
}

func uint24(b []byte) uint32 { return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]) }

// startMessage sets a new message's timestamp from the header's field
// (absolute, or a delta on the previous message's) and reserves its payload:
// the whole length up to maxPrealloc while the connection's reservations
// stay under maxReserved, else initialPayloadAlloc to grow from.
func (r *Reader) startMessage(s *inStream, absolute bool, tsField uint32) error {
	if absolute {
		s.timestamp = tsField
	} else {
		s.timestamp += tsField
	}
	s.delta = tsField
	s.hasHeader = true
	if s.length == 0 {
		return nil
	}
	n := min(int(s.length), initialPayloadAlloc)
	if int(s.length) <= maxPrealloc && r.reserved+int(s.length) <= maxReserved {
		n = int(s.length)
	}
	s.payload = make([]byte, 0, n)
	s.reserved = n
	r.reserved += n
	r.inFlight++
	if r.inFlight > MaxChunkStreams {
		return fmt.Errorf("%w: more than %d", ErrTooManyStreams, MaxChunkStreams)
	}
	return nil
}

// readPayload reads the chunk's n payload bytes into s's message and
// returns the message when it is complete. When the source fails midway,
// what was read is kept and the next call reads the rest of the chunk.
func (r *Reader) readPayload(s *inStream, csid uint32, n int) (*Message, error) {
	r.contLeft = 0
	if n > 0 {
		if r.partial+n > MaxPartialBytes {
			return nil, fmt.Errorf("%w (%d bytes)", ErrTooMuchPartial, MaxPartialBytes)
		}
		r.partial += n
		start := len(s.payload)
		if cap(s.payload)-start >= n {
			s.payload = s.payload[:start+n]
		} else {
			// Doubling, up to the message's length, keeps what the copies
			// cost under the length again (append grows a large slice by
			// a quarter at a time: about five times the length in all).
			grown := make([]byte, start+n, min(max(2*cap(s.payload), start+n), int(s.length)))
			copy(grown, s.payload)
			s.payload = grown
		}
		if got, err := io.ReadFull(r.r, s.payload[start:]); err != nil {
			r.bytesRead += uint64(got)
			s.payload = s.payload[:start+got]
			r.partial -= n - got
			r.cont, r.contCSID, r.contLeft = s, csid, n-got
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		r.bytesRead += uint64(n)
	}
	if len(s.payload) < int(s.length) {
		return nil, nil
	}
	m := &Message{
		ChunkStreamID: csid,
		Timestamp:     s.timestamp,
		Type:          s.typ,
		StreamID:      s.streamID,
		Payload:       s.payload,
	}
	if m.Payload == nil {
		m.Payload = []byte{}
	} else {
		r.release(s)
	}
	s.payload = nil
	return m, nil
}

// release forgets s's partial message.
func (r *Reader) release(s *inStream) {
	r.partial -= len(s.payload)
	s.payload = nil
	r.reserved -= s.reserved
	s.reserved = 0
	r.inFlight--
}
