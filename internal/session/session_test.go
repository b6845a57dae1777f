package session

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/rtmp-server/rtmp-server/internal/amf"
	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/message"
)

// peer is the other side of a session: what it sends is encoded by hand
// from messages, and what the session sends is collected.
type peer struct {
	in   bytes.Buffer // the session's input
	sent []*chunk.Message
}

func (p *peer) write(t *testing.T, msgs ...message.Message) {
	t.Helper()
	for _, m := range msgs {
		p.in.Write(chunk.AppendMessage(nil, m.Chunk(), chunk.DefaultChunkSize))
	}
}

func (p *peer) send(m *chunk.Message) error {
	p.sent = append(p.sent, m)
	return nil
}

func (p *peer) decodeSent(t *testing.T) []message.Message {
	t.Helper()
	var out []message.Message
	for _, m := range p.sent {
		msg, err := message.Decode(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, msg)
	}
	p.sent = nil
	return out
}

func TestAcceptConnectAnnounces(t *testing.T) {
	var p peer
	s := New(chunk.NewReader(&p.in), p.send)
	props := amf.Object{{Key: "fmsVer", Value: "FMS/3,0,1,123"}}
	info := amf.Object{{Key: "objectEncoding", Value: 0.0}}
	if err := s.AcceptConnect("live", 1, 4096, props, info); err != nil {
		t.Fatal(err)
	}
	want := []message.Message{
		message.WindowAckSize{Size: WindowAckSize},
		message.SetPeerBandwidth{Size: PeerBandwidth, Limit: message.LimitDynamic},
		message.SetChunkSize{Size: 4096},
		&message.Command{Name: "_result", Txn: 1, Values: []any{props, amf.Object{
			{Key: "level", Value: "status"},
			{Key: "code", Value: "NetConnection.Connect.Success"},
			{Key: "description", Value: "Connection succeeded."},
			{Key: "objectEncoding", Value: 0.0},
		}}},
	}
	if got := p.decodeSent(t); !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %#v\nwant %#v", got, want)
	}
	st := s.State()
	if !st.Connected || st.App != "live" || st.OutChunkSize != 4096 || st.WindowAckSize != WindowAckSize {
		t.Fatalf("state after connect: %+v", st)
	}
	if err := s.AcceptConnect("live", 2, 4096, nil, nil); err == nil {
		t.Fatal("a second connect was accepted")
	}
}

func TestCreateStreamNumbersStreams(t *testing.T) {
	var p peer
	s := New(chunk.NewReader(&p.in), p.send)
	if _, err := s.CreateStream(1); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("createStream before connect: %v", err)
	}
	s.ConnectAccepted("live")
	for want := uint32(1); want <= 3; want++ {
		id, err := s.CreateStream(float64(want + 1))
		if err != nil || id != want {
			t.Fatalf("CreateStream = %d, %v; want %d", id, err, want)
		}
	}
	got := p.decodeSent(t)
	if r := got[2].(*message.Command); r.Name != "_result" || r.Txn != 4 || r.Arg(0) != 3.0 {
		t.Fatalf("third result: %#v", r)
	}
}

func TestPingIsAnswered(t *testing.T) {
	var p peer
	p.write(t, message.UserControl{Event: message.EventPingRequest, Value: 1234})
	s := New(chunk.NewReader(&p.in), p.send)
	msg, err := s.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if msg != (message.UserControl{Event: message.EventPingRequest, Value: 1234}) {
		t.Fatalf("returned %#v", msg)
	}
	want := []message.Message{message.UserControl{Event: message.EventPingResponse, Value: 1234}}
	if got := p.decodeSent(t); !reflect.DeepEqual(got, want) {
		t.Fatalf("sent %#v", got)
	}
}

// TestAcksFollowThePeersWindow checks that the bytes read are acknowledged
// each time the peer's window fills, before the next read.
func TestAcksFollowThePeersWindow(t *testing.T) {
	var p peer
	p.write(t, message.WindowAckSize{Size: 100})
	media := &message.Media{ChunkStreamID: message.CSIDAudio, Type: message.TypeAudio, StreamID: 1, Payload: make([]byte, 40)}
	for range 8 {
		p.write(t, media)
	}
	s := New(chunk.NewReader(&p.in), p.send)
	var acks []uint32
	for {
		_, err := s.ReadMessage()
		for _, m := range p.decodeSent(t) {
			acks = append(acks, m.(message.Ack).Sequence)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// 16 bytes of window message, then 52 per audio message.
	if want := []uint32{120, 224, 328, 432}; !reflect.DeepEqual(acks, want) {
		t.Fatalf("acks at %v, want %v", acks, want)
	}
}

func TestUndecodableMessages(t *testing.T) {
	var p peer
	p.in.Write(chunk.AppendMessage(nil, &chunk.Message{ChunkStreamID: 2, Type: message.TypeWindowAckSize, Payload: []byte{1}}, 128))
	p.in.Write(chunk.AppendMessage(nil, &chunk.Message{ChunkStreamID: 3, Type: message.TypeCommandAMF0, Payload: []byte{0x05}}, 128))
	s := New(chunk.NewReader(&p.in), p.send)
	if msg, err := s.ReadMessage(); err != nil || reflect.TypeOf(msg) != reflect.TypeOf(&message.Unknown{}) {
		t.Fatalf("truncated window size: %#v, %v", msg, err)
	}
	if _, err := s.ReadMessage(); !errors.Is(err, message.ErrMalformedCommand) {
		t.Fatalf("malformed command: %v", err)
	}
}

// TestStateSaveRestore runs a connection's input through one session,
// saves its state as JSON after each message, restores it into a new
// session that reads the rest, and checks both the messages and the final
// state against a session that read it all.
func TestStateSaveRestore(t *testing.T) {
	var p peer
	p.write(t,
		message.SetChunkSize{Size: 64},
		message.WindowAckSize{Size: 300},
		&message.Command{Name: "connect", Txn: 1, Values: []any{amf.Object{{Key: "app", Value: "live"}}}},
		&message.Command{Name: "createStream", Txn: 2, Values: []any{nil}},
		&message.Command{StreamID: 1, Name: "publish", Txn: 3, Values: []any{nil, "key", "live"}},
	)
	// The rest at the chunk size announced above, a message half-read at
	// the cut points in between.
	for i := range 6 {
		m := &chunk.Message{ChunkStreamID: message.CSIDVideo, Timestamp: uint32(i * 40), Type: message.TypeVideo, StreamID: 1, Payload: bytes.Repeat([]byte{byte(i)}, 100)}
		p.in.Write(chunk.AppendMessage(nil, m, 64))
	}
	input := p.in.Bytes()

	// drive reads messages from s, acting as a server would.
	drive := func(t *testing.T, s *Session, n int) []*chunk.Message {
		var got []*chunk.Message
		for i := 0; n < 0 || i < n; i++ {
			msg, err := s.ReadMessage()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, msg.Chunk())
			if cmd, ok := msg.(*message.Command); ok {
				switch cmd.Name {
				case "connect":
					_ = s.AcceptConnect("live", cmd.Txn, 4096, nil, nil)
				case "createStream":
					_, _ = s.CreateStream(cmd.Txn)
				case "publish":
					s.Publish(cmd.StreamID, cmd.ArgString(0))
				}
			}
		}
		return got
	}
	var whole peer
	one := New(chunk.NewReader(bytes.NewReader(input)), whole.send)
	want := drive(t, one, -1)
	wantState := one.State()
	if !wantState.Connected || wantState.Publishing == nil || *wantState.Publishing != (Stream{ID: 1, Name: "key"}) || wantState.LastAck == 0 {
		t.Fatalf("the whole run ended in %+v", wantState)
	}

	for cut := 1; cut < len(want); cut++ {
		var first, second peer
		src := bytes.NewReader(input)
		// A reader without a buffer of its own, so that the cut is exact.
		r1 := chunk.NewReader(&oneByteReader{src})
		s1 := New(r1, first.send)
		got := drive(t, s1, cut)
		if r1.Buffered() != 0 {
			t.Fatalf("cut %d: %d bytes buffered", cut, r1.Buffered())
		}
		saved, err := json.Marshal(s1.State())
		if err != nil {
			t.Fatal(err)
		}
		var st State
		if err := json.Unmarshal(saved, &st); err != nil {
			t.Fatal(err)
		}
		s2, err := Restore(chunk.NewReader(src), second.send, st)
		if err != nil {
			t.Fatalf("cut %d: %v\n%s", cut, err, saved)
		}
		got = append(got, drive(t, s2, -1)...)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("cut %d: the messages differ", cut)
		}
		if !reflect.DeepEqual(s2.State(), wantState) {
			t.Fatalf("cut %d: state\n%+v\nwant\n%+v", cut, s2.State(), wantState)
		}
		if !reflect.DeepEqual(append(first.sent, second.sent...), whole.sent) {
			t.Fatalf("cut %d: sent %d+%d messages, want %d", cut, len(first.sent), len(second.sent), len(whole.sent))
		}
	}
}

// oneByteReader reads one byte at a time, so that a chunk.Reader on it has
// nothing buffered past the message it returned.
type oneByteReader struct{ r io.Reader }

func (o *oneByteReader) Read(p []byte) (int, error) { return o.r.Read(p[:min(len(p), 1)]) }

func TestRestoreRefusesBadStates(t *testing.T) {
	good := State{OutChunkSize: 128, In: chunk.ReaderState{ChunkSize: 128}}
	tests := []struct {
		name string
		edit func(*State)
		want error
	}{
		{"out chunk size 0", func(s *State) { s.OutChunkSize = 0 }, ErrBadState},
		{"out chunk size too big", func(s *State) { s.OutChunkSize = chunk.MaxChunkSize + 1 }, ErrBadState},
		{"wire chunk size too big", func(s *State) { s.WireChunkSize = chunk.MaxChunkSize + 1 }, ErrBadState},
		{"streams before connect", func(s *State) { s.Publishing = &Stream{ID: 1, Name: "k"} }, ErrBadState},
		{"more acknowledged than read", func(s *State) { s.LastAck = 10 }, ErrBadState},
		{"bad reader state", func(s *State) { s.In.ChunkSize = 0 }, chunk.ErrChunkSize},
	}
	if _, err := Restore(chunk.NewReader(bytes.NewReader(nil)), nil, good); err != nil {
		t.Fatalf("a good state: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := good
			tt.edit(&st)
			if _, err := Restore(chunk.NewReader(bytes.NewReader(nil)), nil, st); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// TestSnapshotWhileRunning reads a session's state from another goroutine
// while its owner drives it (run with -race): every snapshot is one the
// owner's steps could have left, and the last one sees everything.
func TestSnapshotWhileRunning(t *testing.T) {
	var p peer
	const streams = 200
	for range streams {
		p.write(t, message.WindowAckSize{Size: 1000})
	}
	s := New(chunk.NewReader(&p.in), p.send)
	done := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		var last uint32
		for {
			st := s.Snapshot()
			switch {
			case st.In.ChunkSize != 0 || st.In.BytesRead != 0 || st.In.Streams != nil:
				errc <- errors.New("snapshot carries the reader's state")
				return
			case st.LastStreamID < last:
				errc <- errors.New("stream IDs went backwards")
				return
			case st.Publishing != nil && st.Publishing.ID > st.LastStreamID:
				errc <- errors.New("publishing on a stream not yet made")
				return
			}
			last = st.LastStreamID
			select {
			case <-done:
				return
			default:
			}
		}
	}()
	if err := s.AcceptConnect("live", 1, 4096, nil, nil); err != nil {
		t.Fatal(err)
	}
	for i := range streams {
		if _, err := s.ReadMessage(); err != nil {
			t.Fatal(err)
		}
		id, err := s.CreateStream(float64(i + 2))
		if err != nil {
			t.Fatal(err)
		}
		s.Publish(id, "key")
		s.EndPublish()
	}
	s.Play(streams, "key")
	close(done)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	st := s.Snapshot()
	if !st.Connected || st.LastStreamID != streams || st.Playing == nil || st.PeerWindowAckSize != 1000 {
		t.Fatalf("final snapshot %+v", st)
	}
}
