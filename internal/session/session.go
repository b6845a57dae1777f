// Package session is the RTMP protocol state machine of one connection,
// above the message layer: connect, createStream, the publish and play
// streams, acknowledgements, window sizes and chunk sizes. It reads from
// a chunk.Reader and writes through a Sender, so the same Session serves
// a server's connection (whose messages go through a player queue) and a
// client's (which writes them straight to the socket).
//
// All of a Session's state is in State: plain data, JSON-encodable, to
// show a connection, or to save it and carry it on elsewhere (Restore).
// What a connection does with its streams (the hub, callbacks, players'
// queues) is its owner's, not the Session's.
package session

import (
	"errors"
	"fmt"
	"sync"

	"github.com/rtmp-server/rtmp-server/internal/amf"
	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/message"
)

// What a session announces when it accepts a connect.
const (
	// WindowAckSize is the window the peer is asked to acknowledge.
	WindowAckSize = 5_000_000
	// PeerBandwidth is the output bandwidth the peer is given, dynamic.
	PeerBandwidth = 5_000_000
)

// Sentinel errors.
var (
	// ErrBadState is a State that Restore refuses.
	ErrBadState = errors.New("session: invalid state")
	// ErrNotConnected is a stream operation before connect.
	ErrNotConnected = errors.New("session: not connected")
)

// State is the protocol state of one connection. It does not hold bytes
// the chunk reader buffered and did not consume yet (chunk.Reader.Buffered:
// save a state when it is 0), nor what the owner keeps (on the server, the
// roles' hub state). The chunk size the peer was last told by the owner's
// writer, which may announce another one before media of a stream with
// another chunk size, is WireChunkSize (see WroteChunkSize).
type State struct {
	// Connected is set once connect succeeded; App is its app (for the
	// server, the channel).
	Connected bool   `json:"connected"`
	App       string `json:"app,omitempty"`
	// LastStreamID is the last message stream createStream made.
	LastStreamID uint32 `json:"last_stream_id,omitempty"`
	// Publishing and Playing are the streams the connection publishes and
	// plays, if any.
	Publishing *Stream `json:"publishing,omitempty"`
	Playing    *Stream `json:"playing,omitempty"`
	// PeerWindowAckSize is the window the peer asked to be acknowledged
	// (0: none); LastAck is the byte count last acknowledged.
	PeerWindowAckSize uint32 `json:"peer_window_ack_size,omitempty"`
	LastAck           uint64 `json:"last_ack,omitempty"`
	// WindowAckSize is the window this side asked the peer to acknowledge.
	WindowAckSize uint32 `json:"window_ack_size,omitempty"`
	// OutChunkSize is the chunk size this side announced for its messages.
	OutChunkSize uint32 `json:"out_chunk_size"`
	// WireChunkSize is the chunk size of the last Set Chunk Size the
	// owner's writer put on the wire (0: none yet, so the peer assumes
	// the default), whoever queued it: the session (OutChunkSize) or the
	// writer itself, before media of a stream with another chunk size.
	// The next message written is chunked with it.
	WireChunkSize uint32 `json:"wire_chunk_size,omitempty"`
	// In is the incoming chunk stream: chunk size, bytes read and each
	// chunk stream's header state.
	In chunk.ReaderState `json:"in"`
}

// Stream is a message stream that publishes or plays Name. On a server,
// Name is the stream key: a secret, never to be shown.
type Stream struct {
	ID   uint32 `json:"id"`
	Name string `json:"name"`
}

// Sender writes one message to the peer; messages go out in the order
// given. An error ends the session's current operation.
type Sender func(*chunk.Message) error

// Session is the protocol state machine of one connection. It is owned by
// the goroutine that reads the connection: every method but Snapshot is
// for that goroutine alone.
type Session struct {
	in   *chunk.Reader
	send Sender
	// mu guards st against Snapshot, which may run on any goroutine; the
	// owner writes st under it and reads it without.
	mu sync.Mutex
	st State // In is kept by in, and filled in by State
}

// New returns a Session reading in (from its start) and sending through send.
func New(in *chunk.Reader, send Sender) *Session {
	return &Session{in: in, send: send, st: State{OutChunkSize: chunk.DefaultChunkSize}}
}

// Restore returns a Session that carries on from st, reading the rest of
// the connection through in, which is restored to st.In. st is checked as
// a peer's messages would be.
func Restore(in *chunk.Reader, send Sender, st State) (*Session, error) {
	switch {
	case st.OutChunkSize < 1 || st.OutChunkSize > chunk.MaxChunkSize:
		return nil, fmt.Errorf("%w: out chunk size %d (want 1..%d)", ErrBadState, st.OutChunkSize, chunk.MaxChunkSize)
	case !st.Connected && (st.App != "" || st.LastStreamID != 0 || st.Publishing != nil || st.Playing != nil):
		return nil, fmt.Errorf("%w: streams before connect", ErrBadState)
	case st.WireChunkSize > chunk.MaxChunkSize:
		return nil, fmt.Errorf("%w: wire chunk size %d (want 0..%d)", ErrBadState, st.WireChunkSize, chunk.MaxChunkSize)
	case st.LastAck > st.In.BytesRead:
		return nil, fmt.Errorf("%w: %d bytes acknowledged of %d read", ErrBadState, st.LastAck, st.In.BytesRead)
	}
	if err := in.Restore(st.In); err != nil {
		return nil, err
	}
	s := &Session{in: in, send: send, st: st}
	s.st.In = chunk.ReaderState{}
	s.st.Publishing, s.st.Playing = cloneStream(st.Publishing), cloneStream(st.Playing)
	return s, nil
}

func cloneStream(s *Stream) *Stream {
	if s == nil {
		return nil
	}
	c := *s
	return &c
}

// State returns a copy of the session's state, the chunk reader's
// included (for the owner: to save the session).
func (s *Session) State() State {
	st := s.Snapshot()
	st.In = s.in.State()
	return st
}

// Snapshot returns a copy of the session's state without the chunk
// reader's (In is zero). Unlike the other methods it may be called from
// any goroutine while the owner runs the session: to show a connection.
func (s *Session) Snapshot() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Publishing, st.Playing = cloneStream(s.st.Publishing), cloneStream(s.st.Playing)
	return st
}

// update applies f to the state under mu.
func (s *Session) update(f func(st *State)) {
	s.mu.Lock()
	f(&s.st)
	s.mu.Unlock()
}

// WroteChunkSize records that the owner's writer put a Set Chunk Size of
// size on the wire (see State.WireChunkSize). Unlike the other methods
// but Snapshot, the writer may call it from its own goroutine.
func (s *Session) WroteChunkSize(size uint32) {
	s.update(func(st *State) { st.WireChunkSize = size })
}

// Connected reports whether connect succeeded.
func (s *Session) Connected() bool { return s.st.Connected }

// Send sends m, noting the chunk size and window it announces.
func (s *Session) Send(m message.Message) error {
	switch m := m.(type) {
	case message.SetChunkSize:
		s.update(func(st *State) { st.OutChunkSize = m.Size })
	case message.WindowAckSize:
		s.update(func(st *State) { st.WindowAckSize = m.Size })
	}
	return s.send(m.Chunk())
}

// ReadMessage reads the peer's next message and applies what the protocol
// says about it: a window acknowledgement size is kept and honoured, a
// ping request is answered, Set Chunk Size and Abort are applied (by the
// chunk reader). Every message is returned, decoded, so the owner can act
// on it (commands, media) or log it; one that does not decode is returned
// as *message.Unknown, except a malformed command, which is an error.
//
// Before reading, it acknowledges the bytes read so far if the peer's
// window is full: the acknowledgement follows whatever the owner sent in
// answer to the last message.
func (s *Session) ReadMessage() (message.Message, error) {
	if err := s.ackIfDue(); err != nil {
		return nil, err
	}
	m, err := s.in.ReadMessage()
	if err != nil {
		return nil, err
	}
	msg, err := message.Decode(m)
	if err != nil {
		if errors.Is(err, message.ErrMalformedCommand) {
			return nil, err
		}
		return (*message.Unknown)(m), nil
	}
	switch msg := msg.(type) {
	case message.WindowAckSize:
		s.update(func(st *State) { st.PeerWindowAckSize = msg.Size })
	case message.UserControl:
		if msg.Event == message.EventPingRequest {
			if err := s.send(message.UserControl{Event: message.EventPingResponse, Value: msg.Value}.Chunk()); err != nil {
				return nil, err
			}
		}
	}
	return msg, nil
}

func (s *Session) ackIfDue() error {
	read := s.in.BytesRead()
	if s.st.PeerWindowAckSize == 0 || read-s.st.LastAck < uint64(s.st.PeerWindowAckSize) {
		return nil
	}
	s.update(func(st *State) { st.LastAck = read })
	// The sequence number wraps at 2^32, as the specification has it.
	return s.send(message.Ack{Sequence: uint32(read)}.Chunk())
}

// AcceptConnect accepts a connect to app (the server's side): it announces
// the acknowledgement window, the peer's bandwidth and chunkSize, then
// answers transaction txn with the server's properties and the success
// information (to which info adds its properties, such as objectEncoding).
func (s *Session) AcceptConnect(app string, txn float64, chunkSize uint32, properties, info amf.Object) error {
	if s.st.Connected {
		return fmt.Errorf("%w: connect on a connected session", ErrBadState)
	}
	s.update(func(st *State) { st.Connected, st.App = true, app })
	success := append(amf.Object{
		{Key: "level", Value: "status"},
		{Key: "code", Value: "NetConnection.Connect.Success"},
		{Key: "description", Value: "Connection succeeded."},
	}, info...)
	for _, m := range []message.Message{
		message.WindowAckSize{Size: WindowAckSize},
		message.SetPeerBandwidth{Size: PeerBandwidth, Limit: message.LimitDynamic},
		message.SetChunkSize{Size: chunkSize},
		message.Result(txn, properties, success),
	} {
		if err := s.Send(m); err != nil {
			return err
		}
	}
	return nil
}

// ConnectAccepted records that the peer accepted this side's connect to
// app (the client's side).
func (s *Session) ConnectAccepted(app string) {
	s.update(func(st *State) { st.Connected, st.App = true, app })
}

// CreateStream makes the next message stream and answers transaction txn
// with its ID (the server's side). Before connect it is ErrNotConnected.
func (s *Session) CreateStream(txn float64) (uint32, error) {
	if !s.st.Connected {
		return 0, ErrNotConnected
	}
	id := s.st.LastStreamID + 1
	s.update(func(st *State) { st.LastStreamID = id })
	return id, s.Send(message.Result(txn, nil, float64(id)))
}

// StreamCreated records the message stream the peer made for this side's
// createStream (the client's side).
func (s *Session) StreamCreated(id uint32) {
	s.update(func(st *State) { st.LastStreamID = id })
}

// Publish records that message stream id publishes name; like Play, it
// is for a connected session (the owner checks commands before connect).
func (s *Session) Publish(id uint32, name string) {
	s.update(func(st *State) { st.Publishing = &Stream{ID: id, Name: name} })
}

// Play records that message stream id plays name.
func (s *Session) Play(id uint32, name string) {
	s.update(func(st *State) { st.Playing = &Stream{ID: id, Name: name} })
}

// EndPublish records that the connection no longer publishes.
func (s *Session) EndPublish() { s.update(func(st *State) { st.Publishing = nil }) }

// EndPlay records that the connection no longer plays.
func (s *Session) EndPlay() { s.update(func(st *State) { st.Playing = nil }) }

// LastStreamID returns the last message stream createStream made.
func (s *Session) LastStreamID() uint32 { return s.st.LastStreamID }
