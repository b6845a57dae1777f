package chunk

import (
	"fmt"
	"slices"
)

// ReaderState is what a Reader knows about the chunk stream it reads:
// plain data, JSON-encodable, to inspect a connection or to carry it on in
// a Reader elsewhere (Reader.State, Reader.Restore).
type ReaderState struct {
	ChunkSize uint32 `json:"chunk_size"`
	// BytesRead counts the bytes consumed, for acknowledgements.
	BytesRead uint64 `json:"bytes_read"`
	// Streams are the chunk streams that have had a header, by ID.
	Streams []StreamState `json:"streams,omitempty"`
	// Cut is the chunk whose payload the source's last read cut short
	// (a deadline in the middle of it): the Reader reads the rest of its
	// payload before the next header. Nil between chunks.
	Cut *CutChunk `json:"cut,omitempty"`
}

// CutChunk is a chunk read up to the middle of its payload.
type CutChunk struct {
	// ID is its chunk stream, whose Partial holds the payload read so far.
	ID uint32 `json:"id"`
	// Left is how many payload bytes of the chunk are still to come.
	Left uint32 `json:"left"`
}

// StreamState is the header state of one incoming chunk stream: what a
// compressed header (types 1-3) on it continues from.
type StreamState struct {
	ID uint32 `json:"id"`
	// Timestamp is the absolute timestamp of the current message.
	Timestamp uint32 `json:"timestamp"`
	// Delta is the last timestamp field (absolute for type 0), which a
	// type-3 chunk starting a message reuses.
	Delta           uint32 `json:"delta"`
	Length          uint32 `json:"length"`
	Type            uint8  `json:"type"`
	MessageStreamID uint32 `json:"message_stream_id"`
	// Extended says the last header carried an extended timestamp, which
	// type-3 chunks repeat.
	Extended bool `json:"extended,omitempty"`
	// Partial holds the bytes read so far of an unfinished message.
	Partial []byte `json:"partial,omitempty"`
}

// State returns the Reader's state. Partial payloads are copied. Bytes the
// Reader has buffered from its source but not consumed are not part of it
// (see Buffered).
func (r *Reader) State() ReaderState {
	st := ReaderState{ChunkSize: r.chunkSize, BytesRead: r.bytesRead}
	for id, s := range r.streams {
		if !s.hasHeader {
			continue
		}
		st.Streams = append(st.Streams, StreamState{
			ID: id, Timestamp: s.timestamp, Delta: s.delta, Length: s.length, Type: s.typ,
			MessageStreamID: s.streamID, Extended: s.extended, Partial: cloneOrNil(s.payload),
		})
	}
	slices.SortFunc(st.Streams, func(a, b StreamState) int { return int(a.ID) - int(b.ID) })
	if r.contLeft > 0 {
		st.Cut = &CutChunk{ID: r.contCSID, Left: uint32(r.contLeft)}
	}
	return st
}

func cloneOrNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return slices.Clone(b)
}

// Buffered reports how many bytes the Reader has read from its source and
// not consumed yet.
func (r *Reader) Buffered() int { return r.r.Buffered() }

// Restore replaces the Reader's state with st, after checking it against
// the bounds a peer's chunks are held to (chunk size, chunk stream IDs and
// count, message and partial lengths): a state from elsewhere is not
// trusted more than the chunks it stands for. On error the Reader is
// unchanged.
func (r *Reader) Restore(st ReaderState) error {
	if st.ChunkSize < 1 || st.ChunkSize > MaxChunkSize {
		return fmt.Errorf("%w: %d in the state (want 1..%d)", ErrChunkSize, st.ChunkSize, MaxChunkSize)
	}
	if len(st.Streams) > MaxChunkStreams {
		return fmt.Errorf("%w: %d in the state (at most %d)", ErrTooManyStreams, len(st.Streams), MaxChunkStreams)
	}
	streams := make(map[uint32]*inStream, len(st.Streams))
	partial := 0
	for _, ss := range st.Streams {
		switch {
		case ss.ID < 2 || ss.ID > MaxChunkStreamID:
			return fmt.Errorf("%w: chunk stream ID %d in the state (want 2..%d)", ErrBadState, ss.ID, MaxChunkStreamID)
		case streams[ss.ID] != nil:
			return fmt.Errorf("%w: chunk stream %d twice", ErrBadState, ss.ID)
		case ss.Length > MaxMessageSize:
			return fmt.Errorf("%w: message length %d on chunk stream %d (at most %d)", ErrBadState, ss.Length, ss.ID, MaxMessageSize)
		case len(ss.Partial) > 0 && len(ss.Partial) >= int(ss.Length):
			return fmt.Errorf("%w: %d bytes of a %d-byte message on chunk stream %d", ErrBadState, len(ss.Partial), ss.Length, ss.ID)
		}
		partial += len(ss.Partial)
		if partial > MaxPartialBytes {
			return fmt.Errorf("%w (%d bytes)", ErrTooMuchPartial, MaxPartialBytes)
		}
		streams[ss.ID] = &inStream{
			timestamp: ss.Timestamp, delta: ss.Delta, length: ss.Length, typ: ss.Type,
			streamID: ss.MessageStreamID, extended: ss.Extended, hasHeader: true,
		}
	}
	var cut *inStream
	if st.Cut != nil {
		cut = streams[st.Cut.ID]
		switch {
		case cut == nil:
			return fmt.Errorf("%w: cut chunk on chunk stream %d, which has no header", ErrBadState, st.Cut.ID)
		case st.Cut.Left == 0 || st.Cut.Left > st.ChunkSize:
			return fmt.Errorf("%w: %d bytes left of a cut chunk (want 1..%d, the chunk size)", ErrBadState, st.Cut.Left, st.ChunkSize)
		}
		read := 0
		for _, ss := range st.Streams {
			if ss.ID == st.Cut.ID {
				read = len(ss.Partial)
			}
		}
		if int64(st.Cut.Left) > int64(cut.length)-int64(read) {
			return fmt.Errorf("%w: %d bytes left of a cut chunk, %d of a %d-byte message read", ErrBadState, st.Cut.Left, read, cut.length)
		}
	}
	r.chunkSize, r.bytesRead = st.ChunkSize, st.BytesRead
	r.streams, r.low = streams, [64]*inStream{}
	r.inFlight, r.reserved, r.partial = 0, 0, 0
	r.cont, r.contCSID, r.contLeft, r.held = nil, 0, 0, nil
	for _, ss := range st.Streams {
		s := streams[ss.ID]
		if ss.ID < uint32(len(r.low)) {
			r.low[ss.ID] = s
		}
		if len(ss.Partial) > 0 || s == cut {
			// The rest is reserved and grown as for a message read here.
			s.payload = append(make([]byte, 0, len(ss.Partial)), ss.Partial...)
			s.reserved = len(ss.Partial)
			r.reserved += s.reserved
			r.partial += len(ss.Partial)
			r.inFlight++
		}
	}
	if cut != nil {
		r.cont, r.contCSID, r.contLeft = cut, st.Cut.ID, int(st.Cut.Left)
	}
	return nil
}
