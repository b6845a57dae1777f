package chunk

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

// FuzzReader feeds arbitrary bytes to the Reader: it must return messages or
// an error, never panic, and never hold more payload than it was given. The
// messages it returns, encoded again with AppendMessage (at the chunk size
// in force when each was read) and read by a fresh Reader, come back equal.
func FuzzReader(f *testing.F) {
	f.Add(cat(type0(3, 1000, 3, TypeCommandAMF0, 0), []byte("abc")))
	f.Add(cat(type0(6, 0xFFFFFF, 4, TypeVideo, 1), be32(0x01000000), []byte("ab"), hdr(3, 6), be32(0x01000000), []byte("cd")))
	f.Add(cat(type0(2, 0, 4, TypeSetChunkSize, 0), be32(4), type0(6, 0, 6, TypeVideo, 1), []byte("abcd"), hdr(3, 6), []byte("ef")))
	f.Add(cat(type0(65599, 0, 1, TypeAudio, 1), []byte("q"), hdr(1, 65599, cat(be24(23), be24(3), []byte{TypeAudio})...), []byte("a22")))
	f.Add(cat(type0(2, 0, 4, TypeAbort, 0), be32(6), hdr(2, 300, be24(1)...)))
	// An extended timestamp repeated on a type-3 continuation chunk, a
	// 2-byte chunk stream ID and an empty message.
	f.Add(cat(type0(4, 0xFFFFFF, 200, TypeVideo, 1), be32(0x01000000), bytes.Repeat([]byte{7}, 128),
		hdr(3, 4), be32(0x01000000), bytes.Repeat([]byte{8}, 72), type0(300, 5, 0, TypeAudio, 1)))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in))
		total := 0
		var msgs []*Message
		var encoded []byte
		chunkSize := uint32(DefaultChunkSize)
		for {
			m, err := r.ReadMessage()
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF && r.BytesRead() > uint64(len(in)) {
					t.Fatalf("read %d bytes of %d", r.BytesRead(), len(in))
				}
				break
			}
			total += len(m.Payload)
			if total > len(in) {
				t.Fatalf("returned %d payload bytes from %d input bytes", total, len(in))
			}
			msgs = append(msgs, m)
			encoded = AppendMessage(encoded, m, chunkSize)
			chunkSize = r.ChunkSize() // a Set Chunk Size applies to what follows it
		}

		again := NewReader(bytes.NewReader(encoded))
		for i, want := range msgs {
			got, err := again.ReadMessage()
			if err != nil {
				t.Fatalf("message %d of %d, encoded again: %v", i+1, len(msgs), err)
			}
			if !equalMessages(got, want) {
				t.Fatalf("message %d of %d changed in a round trip (payloads differ from byte %d):\n got %s\nwant %s",
					i+1, len(msgs), firstDifference(got.Payload, want.Payload), describe(got), describe(want))
			}
		}
		if m, err := again.ReadMessage(); err != io.EOF {
			t.Fatalf("after the %d messages encoded again: %s, %v; want EOF", len(msgs), describe(m), err)
		}
	})
}

func equalMessages(a, b *Message) bool {
	return a.ChunkStreamID == b.ChunkStreamID && a.Timestamp == b.Timestamp && a.Type == b.Type &&
		a.StreamID == b.StreamID && bytes.Equal(a.Payload, b.Payload)
}

// firstDifference returns the offset of the first byte where a and b
// differ, or the shorter length.
func firstDifference(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func describe(m *Message) string {
	if m == nil {
		return "no message"
	}
	return fmt.Sprintf("csid %d, timestamp %d, type %d, stream %d, %d payload bytes % x", m.ChunkStreamID, m.Timestamp, m.Type, m.StreamID,
		len(m.Payload), m.Payload[:min(len(m.Payload), 16)])
}
