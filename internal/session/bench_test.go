package session

import (
	"bytes"
	"io"
	"testing"

	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/message"
)

// BenchmarkReadMedia measures what the session adds to reading a
// publisher's media: compare with the chunk reader alone (raw). Both
// allocate only the message and its payload.
func BenchmarkReadMedia(b *testing.B) {
	var in []byte
	for i := range 200 {
		typ, csid, size := message.TypeAudio, message.CSIDAudio, 200
		if i%2 == 1 {
			typ, csid, size = message.TypeVideo, message.CSIDVideo, 1500
		}
		in = chunk.AppendMessage(in, &chunk.Message{ChunkStreamID: csid, Timestamp: uint32(i * 20), Type: typ, StreamID: 1, Payload: make([]byte, size)}, chunk.DefaultChunkSize)
	}
	in = chunk.AppendMessage(in, message.WindowAckSize{Size: 2500000}.Chunk(), chunk.DefaultChunkSize)
	run := func(b *testing.B, read func(*chunk.Reader) error) {
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		rd := bytes.NewReader(nil)
		for b.Loop() {
			rd.Reset(in)
			r := chunk.NewReader(rd)
			for {
				if err := read(r); err != nil {
					if err != io.EOF {
						b.Fatal(err)
					}
					break
				}
			}
		}
	}
	b.Run("raw", func(b *testing.B) {
		run(b, func(r *chunk.Reader) error {
			_, err := r.ReadMessage()
			return err
		})
	})
	b.Run("session", func(b *testing.B) {
		var s *Session
		var last *chunk.Reader
		run(b, func(r *chunk.Reader) error {
			if r != last {
				s, last = New(r, func(*chunk.Message) error { return nil }), r
			}
			_, err := s.ReadMessage()
			return err
		})
	})
}
