package message

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/rtmp-server/rtmp-server/internal/amf"
	"github.com/rtmp-server/rtmp-server/internal/chunk"
)

// ctl builds a control message by hand, independent of the encoders.
func ctl(typ uint8, payload ...byte) *chunk.Message {
	return &chunk.Message{ChunkStreamID: 2, Type: typ, Payload: payload}
}

func amf0(t testing.TB, values ...any) []byte {
	t.Helper()
	b, err := amf.AppendAMF0All(nil, values...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestControlBothWays checks each control message's bytes against the
// specification's layout, decoding and encoding.
func TestControlBothWays(t *testing.T) {
	tests := []struct {
		name string
		wire *chunk.Message
		want Message
	}{
		{"set chunk size", ctl(1, 0, 0, 0x10, 0), SetChunkSize{Size: 4096}},
		{"abort", ctl(2, 0, 0, 0, 6), Abort{ChunkStreamID: 6}},
		{"ack", ctl(3, 0xFF, 0xFF, 0xFF, 0xFE), Ack{Sequence: 0xFFFFFFFE}},
		{"window ack size", ctl(5, 0, 0x4C, 0x4B, 0x40), WindowAckSize{Size: 5_000_000}},
		{"peer bandwidth", ctl(6, 0, 0x4C, 0x4B, 0x40, 2), SetPeerBandwidth{Size: 5_000_000, Limit: LimitDynamic}},
		{"stream begin", ctl(4, 0, 0, 0, 0, 0, 1), UserControl{Event: EventStreamBegin, Value: 1}},
		{"stream EOF", ctl(4, 0, 1, 0, 0, 0, 1), UserControl{Event: EventStreamEOF, Value: 1}},
		{"ping request", ctl(4, 0, 6, 0x12, 0x34, 0x56, 0x78), UserControl{Event: EventPingRequest, Value: 0x12345678}},
		{"ping response", ctl(4, 0, 7, 0x12, 0x34, 0x56, 0x78), UserControl{Event: EventPingResponse, Value: 0x12345678}},
		{"set buffer length", ctl(4, 0, 3, 0, 0, 0, 1, 0, 0, 0x0B, 0xB8), UserControl{Event: EventSetBufferLength, Value: 1, BufferLength: 3000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(tt.wire)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Decode = %#v, %v; want %#v", got, err, tt.want)
			}
			if enc := tt.want.Chunk(); !reflect.DeepEqual(enc, tt.wire) {
				t.Fatalf("Chunk = %+v; want %+v", enc, tt.wire)
			}
		})
	}
}

func TestSetChunkSizeIgnoresReservedBit(t *testing.T) {
	got, err := Decode(ctl(1, 0x80, 0, 0x10, 0))
	if err != nil || got != (SetChunkSize{Size: 4096}) {
		t.Fatalf("got %#v, %v", got, err)
	}
}

func TestTruncatedControl(t *testing.T) {
	for _, m := range []*chunk.Message{
		ctl(1, 0, 0, 1), ctl(2), ctl(3, 1, 2, 3), ctl(5, 0, 0), ctl(6, 0, 0, 0, 1),
		ctl(4), ctl(4, 0, 6, 1, 2, 3), ctl(4, 0, 3, 0, 0, 0, 1, 0, 0, 1),
	} {
		if _, err := Decode(m); !errors.Is(err, ErrTruncated) {
			t.Errorf("type %d, % x: got %v, want ErrTruncated", m.Type, m.Payload, err)
		}
	}
}

// TestCommandBothWays decodes commands as peers send them and encodes
// them back to the same bytes.
func TestCommandBothWays(t *testing.T) {
	info := amf.Object{{Key: "level", Value: "status"}, {Key: "code", Value: "NetStream.Play.Start"}}
	tests := []struct {
		name string
		wire *chunk.Message
		want *Command
	}{
		{"connect", &chunk.Message{ChunkStreamID: 3, Type: TypeCommandAMF0, Payload: amf0(t, "connect", 1.0, amf.Object{{Key: "app", Value: "live"}})},
			&Command{Name: "connect", Txn: 1, Values: []any{amf.Object{{Key: "app", Value: "live"}}}}},
		{"publish", &chunk.Message{ChunkStreamID: 3, Type: TypeCommandAMF0, StreamID: 1, Payload: amf0(t, "publish", 5.0, nil, "key", "live")},
			&Command{StreamID: 1, Name: "publish", Txn: 5, Values: []any{nil, "key", "live"}}},
		{"no transaction", &chunk.Message{ChunkStreamID: 3, Type: TypeCommandAMF0, Payload: amf0(t, "FCUnpublish")},
			&Command{Name: "FCUnpublish"}},
		{"AMF3", &chunk.Message{ChunkStreamID: 3, Type: TypeCommandAMF3, StreamID: 1, Payload: append([]byte{0}, amf0(t, "play", 4.0, nil, "k")...)},
			&Command{StreamID: 1, AMF3: true, Name: "play", Txn: 4, Values: []any{nil, "k"}}},
		{"status", &chunk.Message{ChunkStreamID: 3, Type: TypeCommandAMF0, StreamID: 1, Payload: amf0(t, "onStatus", 0.0, nil, info)},
			Status(1, "status", "NetStream.Play.Start", "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(tt.wire)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Decode = %#v, %v; want %#v", got, err, tt.want)
			}
			if tt.want.Name == "FCUnpublish" {
				return // a command without a transaction ID is encoded with one
			}
			if enc := tt.want.Chunk(); !reflect.DeepEqual(enc, tt.wire) {
				t.Fatalf("Chunk = %+v; want %+v", enc, tt.wire)
			}
		})
	}
}

func TestCommandArgs(t *testing.T) {
	cmd := &Command{Name: "x", Values: []any{nil, "s", true, 2.0}}
	if cmd.Object() != nil || cmd.ArgString(0) != "s" || !cmd.ArgBool(1) || !cmd.ArgBool(2) || cmd.ArgBool(0) {
		t.Fatalf("args of %+v", cmd)
	}
	if n, ok := cmd.ArgNumber(2); !ok || n != 2 {
		t.Fatalf("ArgNumber(2) = %v, %v", n, ok)
	}
	if cmd.Arg(3) != nil || cmd.ArgString(9) != "" {
		t.Fatal("missing arguments are not nil")
	}
}

func TestMalformedCommands(t *testing.T) {
	long := string(bytes.Repeat([]byte("a"), MaxCommandName+1))
	for _, tt := range []struct {
		name    string
		payload []byte
		want    error
	}{
		{"empty", nil, ErrMalformedCommand},
		{"name not a string", amf0(t, 1.0, 2.0), ErrMalformedCommand},
		{"name too long", amf0(t, long, 1.0), ErrMalformedCommand},
		{"bad AMF", []byte{0x02, 0, 9, 'a'}, ErrMalformedCommand},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode(&chunk.Message{Type: TypeCommandAMF0, Payload: tt.payload}); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := Decode(&chunk.Message{Type: TypeCommandAMF3}); !errors.Is(err, ErrTruncated) {
		t.Fatalf("AMF3 command without a format byte: got %v", err)
	}
	longest := string(bytes.Repeat([]byte("a"), MaxCommandName))
	if _, err := Decode(&chunk.Message{Type: TypeCommandAMF0, Payload: amf0(t, longest, 1.0)}); err != nil {
		t.Fatalf("a name of MaxCommandName bytes: %v", err)
	}
}

func TestBuilders(t *testing.T) {
	tests := []struct {
		name string
		got  *chunk.Message
		want []any
	}{
		{"status", Status(1, "error", "NetStream.Play.BadName", "Invalid").Chunk(), []any{"onStatus", 0.0, nil,
			amf.Object{{Key: "level", Value: "error"}, {Key: "code", Value: "NetStream.Play.BadName"}, {Key: "description", Value: "Invalid"}}}},
		{"result", Result(2, nil, 1.0).Chunk(), []any{"_result", 2.0, nil, 1.0}},
		{"error", Error(3, "NetConnection.Call.Failed", "no").Chunk(), []any{"_error", 3.0, nil,
			amf.Object{{Key: "level", Value: "error"}, {Key: "code", Value: "NetConnection.Call.Failed"}, {Key: "description", Value: "no"}}}},
		{"data", DataValues(1, "|RtmpSampleAccess", false, false).Chunk(), []any{"|RtmpSampleAccess", false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !bytes.Equal(tt.got.Payload, amf0(t, tt.want...)) || tt.got.ChunkStreamID != CSIDCommand {
				t.Fatalf("got %+v", tt.got)
			}
		})
	}
	if m := Status(7, "status", "x", "").Chunk(); m.StreamID != 7 || m.Type != TypeCommandAMF0 {
		t.Fatalf("status on stream 7: %+v", m)
	}
	if _, err := (&Command{Name: "x", Values: []any{make(chan int)}}).Encode(); err == nil {
		t.Fatal("a value amf cannot encode was encoded")
	}
}

func TestPayloadTypesShareTheMessage(t *testing.T) {
	for _, typ := range []uint8{TypeAudio, TypeVideo, TypeDataAMF0, TypeDataAMF3, TypeAggregate, TypeSharedObjectAMF0, 99} {
		m := &chunk.Message{Type: typ, Payload: []byte{0, 2}}
		got, err := Decode(m)
		if err != nil || got.Chunk() != m {
			t.Fatalf("type %d: %#v, %v", typ, got, err)
		}
	}
	if b := (&Data{Type: TypeDataAMF3, Payload: []byte{0, 2}}).Body(); !bytes.Equal(b, []byte{2}) {
		t.Fatalf("AMF3 data body % x", b)
	}
}

// sub encodes an aggregate sub-message (an FLV tag) by hand.
func sub(typ uint8, ts uint32, payload string) []byte {
	n := len(payload)
	b := []byte{typ, byte(n >> 16), byte(n >> 8), byte(n), byte(ts >> 16), byte(ts >> 8), byte(ts), byte(ts >> 24), 0, 0, 0}
	b = append(b, payload...)
	return append(b, 0, 0, 0, byte(11+n))
}

func TestAggregate(t *testing.T) {
	body := bytes.Join([][]byte{sub(TypeVideo, 1000, "v1"), sub(TypeUserControl, 1010, "x"), sub(TypeAudio, 1020, "a1"), sub(TypeDataAMF0, 0x01000000, "d")}, nil)
	agg := &Aggregate{ChunkStreamID: 6, Timestamp: 50, Type: TypeAggregate, StreamID: 1, Payload: body}
	var got []chunk.Message
	if err := agg.Each(func(m *chunk.Message) error { got = append(got, *m); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []chunk.Message{
		{ChunkStreamID: 6, Timestamp: 50, Type: TypeVideo, StreamID: 1, Payload: []byte("v1")},
		{ChunkStreamID: 6, Timestamp: 70, Type: TypeAudio, StreamID: 1, Payload: []byte("a1")},
		{ChunkStreamID: 6, Timestamp: 50 + 0x01000000 - 1000, Type: TypeDataAMF0, StreamID: 1, Payload: []byte("d")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}

	for _, bad := range [][]byte{append(sub(TypeVideo, 0, "v"), 1, 2, 3), sub(TypeVideo, 0, "v")[:12]} {
		n := 0
		err := (&Aggregate{Payload: bad}).Each(func(*chunk.Message) error { n++; return nil })
		if !errors.Is(err, ErrAggregate) {
			t.Fatalf("% x: got %v, want ErrAggregate", bad, err)
		}
		if len(bad) > 12 && n != 1 {
			t.Fatalf("the sub-message before the bad one was not passed on")
		}
	}
	stop := errors.New("stop")
	if err := agg.Each(func(*chunk.Message) error { return stop }); err != stop {
		t.Fatalf("fn's error: got %v", err)
	}
}
