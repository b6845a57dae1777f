package session

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/rtmp-server/rtmp-server/internal/amf"
	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/message"
)

// FuzzSession runs a peer's arbitrary bytes through a session answering
// as a server does. After every message, the state it reports must
// survive JSON and be accepted by Restore, giving a session that reports
// the same state: whatever a peer sends, the session can be saved.
func FuzzSession(f *testing.F) {
	seed := func(msgs ...message.Message) {
		var b []byte
		for _, m := range msgs {
			b = chunk.AppendMessage(b, m.Chunk(), chunk.DefaultChunkSize)
		}
		f.Add(b)
	}
	seed(message.SetChunkSize{Size: 64}, message.WindowAckSize{Size: 50},
		&message.Command{Name: "connect", Txn: 1, Values: []any{amf.Object{{Key: "app", Value: "live"}}}},
		&message.Command{Name: "createStream", Txn: 2, Values: []any{nil}},
		&message.Command{StreamID: 1, Name: "publish", Txn: 3, Values: []any{nil, "key", "live"}},
		&message.Media{ChunkStreamID: message.CSIDVideo, Type: message.TypeVideo, StreamID: 1, Payload: make([]byte, 300)})
	seed(message.UserControl{Event: message.EventPingRequest, Value: 9},
		&message.Command{StreamID: 1, Name: "play", Txn: 3, Values: []any{nil, "key"}})
	f.Add(append(chunk.AppendMessage(nil, &chunk.Message{ChunkStreamID: 6, Type: message.TypeVideo, StreamID: 1, Payload: make([]byte, 500)}, chunk.DefaultChunkSize)[:300], 0xC6))

	f.Fuzz(func(t *testing.T, in []byte) {
		s := New(chunk.NewReader(&oneByteReader{bytes.NewReader(in)}), func(*chunk.Message) error { return nil })
		for range 64 {
			msg, err := s.ReadMessage()
			if err != nil {
				return
			}
			if cmd, ok := msg.(*message.Command); ok {
				switch cmd.Name {
				case "connect":
					_ = s.AcceptConnect(cmd.ArgString(0), cmd.Txn, 4096, nil, nil)
				case "createStream":
					_, _ = s.CreateStream(cmd.Txn)
				case "publish":
					if s.Connected() {
						s.Publish(cmd.StreamID, cmd.ArgString(0))
					}
				case "play":
					if s.Connected() {
						s.Play(cmd.StreamID, cmd.ArgString(0))
					}
				}
			}
			j, err := json.Marshal(s.State())
			if err != nil {
				t.Fatal(err)
			}
			var st State
			if err := json.Unmarshal(j, &st); err != nil {
				t.Fatal(err)
			}
			restored, err := Restore(chunk.NewReader(bytes.NewReader(nil)), nil, st)
			if err != nil {
				t.Fatalf("its own state refused: %v\n%s", err, j)
			}
			if !reflect.DeepEqual(restored.State(), s.State()) {
				t.Fatalf("restored\n%+v\nwant\n%+v", restored.State(), s.State())
			}
		}
	})
}
