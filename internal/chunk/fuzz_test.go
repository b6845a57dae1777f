package chunk

import (
	"bytes"
	"io"
	"testing"
)

// FuzzReader feeds arbitrary bytes to the Reader: it must return messages or
// an error, never panic, and never hold more payload than it was given.
func FuzzReader(f *testing.F) {
	f.Add(cat(type0(3, 1000, 3, TypeCommandAMF0, 0), []byte("abc")))
	f.Add(cat(type0(6, 0xFFFFFF, 4, TypeVideo, 1), be32(0x01000000), []byte("ab"), hdr(3, 6), be32(0x01000000), []byte("cd")))
	f.Add(cat(type0(2, 0, 4, TypeSetChunkSize, 0), be32(4), type0(6, 0, 6, TypeVideo, 1), []byte("abcd"), hdr(3, 6), []byte("ef")))
	f.Add(cat(type0(65599, 0, 1, TypeAudio, 1), []byte("q"), hdr(1, 65599, cat(be24(23), be24(3), []byte{TypeAudio})...), []byte("a22")))
	f.Add(cat(type0(2, 0, 4, TypeAbort, 0), be32(6), hdr(2, 300, be24(1)...)))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in))
		total := 0
		for {
			m, err := r.ReadMessage()
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF && r.BytesRead() > uint64(len(in)) {
					t.Fatalf("read %d bytes of %d", r.BytesRead(), len(in))
				}
				return
			}
			total += len(m.Payload)
			if total > len(in) {
				t.Fatalf("returned %d payload bytes from %d input bytes", total, len(in))
			}
		}
	})
}
