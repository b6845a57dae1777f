package chunk

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"testing"
)

// hdr builds a chunk header by hand, independent of the encoder.
func hdr(format uint8, csid uint32, fields ...byte) []byte {
	return append(appendBasicHeader(nil, format, csid), fields...)
}

func be24(v uint32) []byte { return []byte{byte(v >> 16), byte(v >> 8), byte(v)} }
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func type0(csid, ts, length uint32, typ uint8, msid uint32) []byte {
	return hdr(0, csid, cat(be24(ts), be24(length), []byte{typ}, le32(msid))...)
}

func readAll(t *testing.T, in []byte, chunkSize uint32) ([]*Message, error) {
	t.Helper()
	r := NewReader(bytes.NewReader(in))
	if chunkSize != 0 {
		if err := r.SetChunkSize(chunkSize); err != nil {
			t.Fatal(err)
		}
	}
	var out []*Message
	for {
		m, err := r.ReadMessage()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
}

func msg(csid, ts uint32, typ uint8, msid uint32, payload string) *Message {
	return &Message{ChunkStreamID: csid, Timestamp: ts, Type: typ, StreamID: msid, Payload: []byte(payload)}
}

func TestReaderVectors(t *testing.T) {
	tests := []struct {
		name      string
		chunkSize uint32
		input     []byte
		want      []*Message
	}{
		{
			name:  "type 0 single chunk",
			input: cat(type0(3, 1000, 3, TypeCommandAMF0, 0), []byte("abc")),
			want:  []*Message{msg(3, 1000, TypeCommandAMF0, 0, "abc")},
		},
		{
			name:      "type 0 then type 3 continuation",
			chunkSize: 4,
			input:     cat(type0(6, 40, 6, TypeVideo, 1), []byte("abcd"), hdr(3, 6), []byte("ef")),
			want:      []*Message{msg(6, 40, TypeVideo, 1, "abcdef")},
		},
		{
			name: "type 1 and type 2 deltas",
			input: cat(
				type0(4, 100, 2, TypeAudio, 1), []byte("a1"),
				hdr(1, 4, cat(be24(23), be24(3), []byte{TypeAudio})...), []byte("a22"),
				hdr(2, 4, be24(20)...), []byte("a33"),
			),
			want: []*Message{
				msg(4, 100, TypeAudio, 1, "a1"),
				msg(4, 123, TypeAudio, 1, "a22"),
				msg(4, 143, TypeAudio, 1, "a33"),
			},
		},
		{
			name: "type 3 new message reuses the last delta",
			input: cat(
				type0(4, 10, 1, TypeAudio, 1), []byte("x"),
				hdr(2, 4, be24(21)...), []byte("y"),
				hdr(3, 4), []byte("z"),
			),
			want: []*Message{
				msg(4, 10, TypeAudio, 1, "x"),
				msg(4, 31, TypeAudio, 1, "y"),
				msg(4, 52, TypeAudio, 1, "z"),
			},
		},
		{
			name:  "two-byte chunk stream id",
			input: cat(type0(300, 0, 1, TypeAudio, 1), []byte("q")),
			want:  []*Message{msg(300, 0, TypeAudio, 1, "q")},
		},
		{
			name:  "three-byte chunk stream id",
			input: cat(type0(65599, 0, 1, TypeAudio, 1), []byte("q")),
			want:  []*Message{msg(65599, 0, TypeAudio, 1, "q")},
		},
		{
			name:  "smallest two-byte id",
			input: cat(hdr(0, 64, cat(be24(7), be24(1), []byte{TypeAudio}, le32(1))...), []byte("q")),
			want:  []*Message{msg(64, 7, TypeAudio, 1, "q")},
		},
		{
			name:      "extended timestamp repeated on type 3 continuation",
			chunkSize: 2,
			input: cat(
				type0(6, 0xFFFFFF, 4, TypeVideo, 1), be32(0x01000000), []byte("ab"),
				hdr(3, 6), be32(0x01000000), []byte("cd"),
			),
			want: []*Message{msg(6, 0x01000000, TypeVideo, 1, "abcd")},
		},
		{
			name: "deltas crossing 0xFFFFFF",
			input: cat(
				type0(6, 0xFFFFF0, 1, TypeVideo, 1), []byte("a"),
				hdr(2, 6, be24(0x20)...), []byte("b"),
			),
			want: []*Message{
				msg(6, 0xFFFFF0, TypeVideo, 1, "a"),
				msg(6, 0x01000010, TypeVideo, 1, "b"),
			},
		},
		{
			name: "timestamps wrap modulo 2^32",
			input: cat(
				type0(6, 0xFFFFFF, 1, TypeVideo, 1), be32(0xFFFFFFF0), []byte("a"),
				hdr(2, 6, be24(0x20)...), []byte("b"),
			),
			want: []*Message{
				msg(6, 0xFFFFFFF0, TypeVideo, 1, "a"),
				msg(6, 0x10, TypeVideo, 1, "b"),
			},
		},
		{
			name: "set chunk size applies to the next chunks",
			input: cat(
				type0(2, 0, 4, TypeSetChunkSize, 0), be32(4),
				type0(6, 0, 6, TypeVideo, 1), []byte("abcd"), hdr(3, 6), []byte("ef"),
			),
			want: []*Message{
				{ChunkStreamID: 2, Type: TypeSetChunkSize, Payload: be32(4)},
				msg(6, 0, TypeVideo, 1, "abcdef"),
			},
		},
		{
			name:      "interleaved chunk streams",
			chunkSize: 2,
			input: cat(
				type0(6, 5, 4, TypeVideo, 1), []byte("vv"),
				type0(4, 6, 2, TypeAudio, 1), []byte("aa"),
				hdr(3, 6), []byte("VV"),
			),
			want: []*Message{msg(4, 6, TypeAudio, 1, "aa"), msg(6, 5, TypeVideo, 1, "vvVV")},
		},
		{
			name:      "abort drops the partial message",
			chunkSize: 2,
			input: cat(
				type0(6, 5, 4, TypeVideo, 1), []byte("vv"),
				type0(2, 0, 4, TypeAbort, 0), be32(6)[:2], hdr(3, 2), be32(6)[2:],
				type0(6, 9, 2, TypeVideo, 1), []byte("ok"),
			),
			want: []*Message{
				{ChunkStreamID: 2, Type: TypeAbort, Payload: be32(6)},
				msg(6, 9, TypeVideo, 1, "ok"),
			},
		},
		{
			name:  "empty message",
			input: type0(3, 1, 0, TypeCommandAMF0, 0),
			want:  []*Message{{ChunkStreamID: 3, Timestamp: 1, Type: TypeCommandAMF0, Payload: []byte{}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readAll(t, tt.input, tt.chunkSize)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestReaderErrors(t *testing.T) {
	tests := []struct {
		name  string
		input []byte
		want  error
	}{
		{"type 1 without previous header", hdr(1, 5, cat(be24(1), be24(1), []byte{8})...), ErrNoPreviousHeader},
		{"type 3 without previous header", hdr(3, 5), ErrNoPreviousHeader},
		{"zero chunk size", cat(type0(2, 0, 4, TypeSetChunkSize, 0), be32(0)), ErrChunkSize},
		{"short set chunk size", cat(type0(2, 0, 2, TypeSetChunkSize, 0), []byte{0, 1}), ErrChunkSize},
		{"truncated header", type0(3, 0, 10, TypeVideo, 1)[:5], io.ErrUnexpectedEOF},
		{"truncated payload", cat(type0(3, 0, 10, TypeVideo, 1), []byte("abc")), io.ErrUnexpectedEOF},
		{"length changes mid-message", cat(
			type0(3, 0, 200, TypeVideo, 1), bytes.Repeat([]byte("a"), 128),
			hdr(1, 3, cat(be24(0), be24(300), []byte{9})...)), ErrMessageSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readAll(t, tt.input, 0)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestTooManyChunkStreams(t *testing.T) {
	var in []byte
	for csid := uint32(3); csid < 3+MaxChunkStreams+1; csid++ {
		in = append(in, type0(csid, 0, 1, TypeAudio, 1)...)
		in = append(in, 'x')
	}
	_, err := readAll(t, in, 0)
	if !errors.Is(err, ErrTooManyStreams) {
		t.Fatalf("got %v, want ErrTooManyStreams", err)
	}
}

func TestRoundTrip(t *testing.T) {
	payload := make([]byte, 1000)
	for i := range payload {
		payload[i] = byte(i)
	}
	tests := []struct {
		name      string
		chunkSize uint32
		m         *Message
	}{
		{"small", 128, &Message{ChunkStreamID: 3, Timestamp: 0, Type: TypeCommandAMF0, Payload: []byte("connect")}},
		{"many chunks", 128, &Message{ChunkStreamID: 6, Timestamp: 40, Type: TypeVideo, StreamID: 1, Payload: payload}},
		{"exact multiple", 100, &Message{ChunkStreamID: 6, Timestamp: 40, Type: TypeVideo, StreamID: 1, Payload: payload}},
		{"extended timestamp", 128, &Message{ChunkStreamID: 6, Timestamp: 0x12345678, Type: TypeVideo, StreamID: 1, Payload: payload}},
		{"at the extended boundary", 128, &Message{ChunkStreamID: 6, Timestamp: 0xFFFFFF, Type: TypeVideo, StreamID: 1, Payload: payload}},
		{"two-byte csid", 4096, &Message{ChunkStreamID: 319, Timestamp: 1, Type: TypeAudio, StreamID: 7, Payload: payload}},
		{"three-byte csid", 64, &Message{ChunkStreamID: 320, Timestamp: 1, Type: TypeAudio, StreamID: 7, Payload: payload}},
		{"empty", 128, &Message{ChunkStreamID: 4, Timestamp: 9, Type: TypeAudio, StreamID: 1, Payload: []byte{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := AppendMessage(nil, tt.m, tt.chunkSize)
			if got, want := len(enc), EncodedLen(len(tt.m.Payload), tt.chunkSize, tt.m.ChunkStreamID, tt.m.Timestamp); got != want {
				t.Fatalf("encoded %d bytes, EncodedLen says %d", got, want)
			}
			// Two copies back to back: the second must not depend on the first.
			got, err := readAll(t, append(enc, enc...), tt.chunkSize)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || !reflect.DeepEqual(got[0], tt.m) || !reflect.DeepEqual(got[1], tt.m) {
				t.Fatalf("got %+v, want twice %+v", got, tt.m)
			}
		})
	}
}

func TestWriterMatchesHandEncoding(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.SetChunkSize(2)
	if err := w.WriteMessage(&Message{ChunkStreamID: 6, Timestamp: 0x01000000, Type: TypeVideo, StreamID: 1, Payload: []byte("abc")}); err != nil {
		t.Fatal(err)
	}
	want := cat(type0(6, 0xFFFFFF, 3, TypeVideo, 1), be32(0x01000000), []byte("ab"), hdr(3, 6), be32(0x01000000), []byte("c"))
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("got  % x\nwant % x", buf.Bytes(), want)
	}
}

func BenchmarkAppendMessage(b *testing.B) {
	m := &Message{ChunkStreamID: 6, Timestamp: 40, Type: TypeVideo, StreamID: 1, Payload: make([]byte, 64<<10)}
	var buf []byte
	b.SetBytes(int64(len(m.Payload)))
	for b.Loop() {
		buf = AppendMessage(buf[:0], m, 4096)
	}
}

func BenchmarkReadMessage(b *testing.B) {
	m := &Message{ChunkStreamID: 6, Timestamp: 40, Type: TypeVideo, StreamID: 1, Payload: make([]byte, 64<<10)}
	enc := AppendMessage(nil, m, 4096)
	b.SetBytes(int64(len(m.Payload)))
	rd := bytes.NewReader(nil)
	for b.Loop() {
		rd.Reset(enc)
		r := NewReader(rd)
		_ = r.SetChunkSize(4096)
		if _, err := r.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestPartialMessagesBounded(t *testing.T) {
	// Two chunk streams each leave a message open; together they pass the bound.
	const chunkSize = 1 << 20
	var in []byte
	in = append(in, type0(2, 0, 4, TypeSetChunkSize, 0)...)
	in = append(in, be32(chunkSize)...)
	body := make([]byte, chunkSize)
	for _, csid := range []uint32{4, 5} {
		in = append(in, type0(csid, 0, MaxMessageSize, TypeVideo, 1)...)
		in = append(in, body...)
		for i := 1; i < 9; i++ {
			in = append(in, hdr(3, csid)...)
			in = append(in, body...)
		}
	}
	_, err := readAll(t, in, 0)
	if !errors.Is(err, ErrTooMuchPartial) {
		t.Fatalf("got %v, want ErrTooMuchPartial", err)
	}
}

func TestRebufferKeepsBufferedBytes(t *testing.T) {
	one := cat(type0(3, 1, 3, TypeCommandAMF0, 0), []byte("abc"))
	two := cat(type0(4, 2, 2, TypeAudio, 1), []byte("xy"))
	src := bytes.NewReader(cat(one, two, one))
	br := bufio.NewReaderSize(src, 16)
	r := NewReader(br)
	if m, err := r.ReadMessage(); err != nil || string(m.Payload) != "abc" {
		t.Fatalf("first: %v %v", m, err)
	}
	r.Rebuffer(src, 64<<10)
	for _, want := range []string{"xy", "abc"} {
		m, err := r.ReadMessage()
		if err != nil || string(m.Payload) != want {
			t.Fatalf("after rebuffer: %v %v, want %q", m, err, want)
		}
	}
}

// BenchmarkReadStream measures the per-chunk cost of a publisher's stream:
// small audio messages with type-2 headers, video messages with type-1
// headers split into type-3 continuations at the default chunk size.
func BenchmarkReadStream(b *testing.B) {
	audio := make([]byte, 200)
	video := make([]byte, 1500)
	var in []byte
	in = append(in, type0(4, 0, uint32(len(audio)), TypeAudio, 1)...)
	in = append(in, audio[:DefaultChunkSize]...)
	in = append(in, hdr(3, 4)...)
	in = append(in, audio[DefaultChunkSize:]...)
	in = append(in, type0(6, 0, uint32(len(video)), TypeVideo, 1)...)
	in = append(in, video[:DefaultChunkSize]...)
	for p := video[DefaultChunkSize:]; len(p) > 0; p = p[min(len(p), DefaultChunkSize):] {
		in = append(in, hdr(3, 6)...)
		in = append(in, p[:min(len(p), DefaultChunkSize)]...)
	}
	for range 100 {
		in = append(in, hdr(2, 4, be24(23)...)...)
		in = append(in, audio[:DefaultChunkSize]...)
		in = append(in, hdr(3, 4)...)
		in = append(in, audio[DefaultChunkSize:]...)
		in = append(in, hdr(1, 6, cat(be24(33), be24(uint32(len(video))), []byte{TypeVideo})...)...)
		in = append(in, video[:DefaultChunkSize]...)
		for p := video[DefaultChunkSize:]; len(p) > 0; p = p[min(len(p), DefaultChunkSize):] {
			in = append(in, hdr(3, 6)...)
			in = append(in, p[:min(len(p), DefaultChunkSize)]...)
		}
	}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	rd := bytes.NewReader(nil)
	for b.Loop() {
		rd.Reset(in)
		r := NewReader(rd)
		for {
			if _, err := r.ReadMessage(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
	}
}
