package message

import (
	"bytes"
	"testing"

	"github.com/rtmp-server/rtmp-server/internal/amf"
	"github.com/rtmp-server/rtmp-server/internal/chunk"
)

// FuzzDecode decodes a peer's message (its type, then its payload): it
// must not panic, a control message or command that decodes must encode
// to bytes that decode and encode to the same bytes again, and an
// aggregate's sub-messages must lie within it.
func FuzzDecode(f *testing.F) {
	seed := func(typ uint8, payload []byte) { f.Add(append([]byte{typ}, payload...)) }
	for _, m := range []Message{
		SetChunkSize{Size: 4096}, Abort{ChunkStreamID: 6}, Ack{Sequence: 1 << 31}, WindowAckSize{Size: 2500000},
		SetPeerBandwidth{Size: 2500000, Limit: LimitDynamic}, UserControl{Event: EventPingRequest, Value: 7},
		UserControl{Event: EventSetBufferLength, Value: 1, BufferLength: 3000},
		Status(1, "status", "NetStream.Publish.Start", "published"), Result(1, nil, 1.0), Error(2, "NetConnection.Call.Failed", "x"),
		&Command{Name: "connect", Txn: 1, Values: []any{amf.Object{{Key: "app", Value: "live"}, {Key: "objectEncoding", Value: 3.0}}}},
		&Command{StreamID: 1, AMF3: true, Name: "publish", Txn: 5, Values: []any{nil, "key", "live"}},
	} {
		c := m.Chunk()
		seed(c.Type, c.Payload)
	}
	seed(TypeAggregate, bytes.Join([][]byte{sub(TypeVideo, 1000, "v1"), sub(TypeAudio, 1020, "a1")}, nil))
	seed(TypeAggregate, append(sub(TypeVideo, 0, "v"), 1, 2))
	seed(TypeCommandAMF0, []byte{0x02, 0, 9, 'a'})
	seed(TypeDataAMF3, []byte{0, 2, 0, 1, 'x'})

	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		m := &chunk.Message{ChunkStreamID: 3, Type: in[0], StreamID: 1, Payload: in[1:]}
		msg, err := Decode(m)
		if err != nil {
			return
		}
		switch msg := msg.(type) {
		case *Aggregate:
			total := 0
			_ = msg.Each(func(s *chunk.Message) error {
				total += len(s.Payload)
				if total > len(m.Payload) {
					t.Fatalf("sub-messages of %d bytes from %d", total, len(m.Payload))
				}
				return nil
			})
			return
		case *Media, *Data, *Unknown:
			if msg.Chunk() != m {
				t.Fatal("a payload message was copied")
			}
			return
		}
		once := encode(t, msg)
		again, err := Decode(once)
		if err != nil {
			t.Fatalf("re-decoding % x: %v", once.Payload, err)
		}
		if twice := encode(t, again); twice.Type != once.Type || !bytes.Equal(twice.Payload, once.Payload) {
			t.Fatalf("encoded % x, then % x", once.Payload, twice.Payload)
		}
	})
}

func encode(t *testing.T, m Message) *chunk.Message {
	if cmd, ok := m.(*Command); ok {
		c, err := cmd.Encode()
		if err != nil {
			t.Fatalf("encoding a decoded command: %v", err)
		}
		return c
	}
	return m.Chunk()
}
