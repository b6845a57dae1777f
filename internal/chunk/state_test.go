package chunk

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"
)

// TestStateCarriesOn cuts a chunk stream at every chunk boundary, moves the
// first Reader's state through JSON into a second Reader, and checks that
// the second reads the rest as the first would have: compressed headers,
// an extended timestamp repeated on type-3 chunks, and a message left
// half-read on an interleaved chunk stream all continue.
func TestStateCarriesOn(t *testing.T) {
	type piece struct {
		b        []byte
		boundary bool // a chunk ends here
	}
	pieces := []piece{
		{cat(type0(2, 0, 4, TypeSetChunkSize, 0), be32(4)), true},
		{cat(type0(4, 1000, 6, TypeAudio, 1), []byte("a0a0")), true},
		{cat(type0(6, 0xFFFFFF, 5, TypeVideo, 1), be32(0x01000000), []byte("v0v0")), true},
		{cat(hdr(3, 4), []byte("a0")), true},
		{cat(hdr(3, 6), be32(0x01000000), []byte("v")), true},
		{cat(hdr(2, 4, be24(20)...), []byte("a1a1")), true},
		{cat(hdr(1, 6, cat(be24(40), be24(3), []byte{TypeVideo})...), []byte("v1v")), true},
		{cat(hdr(3, 4), []byte("a1")), true},
		{cat(hdr(3, 4), []byte("a2a2")), true}, // a new message like the last: same delta
		{cat(hdr(3, 4), []byte("a2")), true},
	}
	var all []byte
	var cuts []int
	for _, p := range pieces {
		all = append(all, p.b...)
		cuts = append(cuts, len(all))
	}
	want, err := readAll(t, all, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, cut := range cuts {
		first := NewReader(bytes.NewReader(all[:cut]))
		var got []*Message
		for {
			m, err := first.ReadMessage()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("cut at %d: %v", cut, err)
			}
			got = append(got, m)
		}
		j, err := json.Marshal(first.State())
		if err != nil {
			t.Fatal(err)
		}
		var st ReaderState
		if err := json.Unmarshal(j, &st); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(st, first.State()) {
			t.Fatalf("cut at %d: JSON changed the state:\n%+v\n%+v", cut, st, first.State())
		}
		second := NewReader(bytes.NewReader(all[cut:]))
		if err := second.Restore(st); err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		for {
			m, err := second.ReadMessage()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("cut at %d, after the restore: %v", cut, err)
			}
			got = append(got, m)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("cut at %d:\ngot  %v\nwant %v", cut, got, want)
		}
		if second.BytesRead() != uint64(len(all)) {
			t.Fatalf("cut at %d: %d bytes counted, want %d", cut, second.BytesRead(), len(all))
		}
	}
}

func TestRestoreChecksBounds(t *testing.T) {
	ok := StreamState{ID: 4, Length: 10, Type: TypeAudio}
	many := make([]StreamState, MaxChunkStreams+1)
	for i := range many {
		many[i] = StreamState{ID: uint32(2 + i)}
	}
	big := StreamState{ID: 5, Length: MaxMessageSize, Partial: make([]byte, MaxPartialBytes/2+1)}
	big2 := big
	big2.ID = 6
	tests := []struct {
		name string
		st   ReaderState
		want error
	}{
		{"chunk size 0", ReaderState{ChunkSize: 0}, ErrChunkSize},
		{"chunk size too big", ReaderState{ChunkSize: MaxChunkSize + 1}, ErrChunkSize},
		{"too many streams", ReaderState{ChunkSize: 128, Streams: many}, ErrTooManyStreams},
		{"chunk stream 1", ReaderState{ChunkSize: 128, Streams: []StreamState{{ID: 1}}}, ErrBadState},
		{"chunk stream past the header's range", ReaderState{ChunkSize: 128, Streams: []StreamState{{ID: MaxChunkStreamID + 1}}}, ErrBadState},
		{"twice", ReaderState{ChunkSize: 128, Streams: []StreamState{ok, ok}}, ErrBadState},
		{"message too long", ReaderState{ChunkSize: 128, Streams: []StreamState{{ID: 4, Length: MaxMessageSize + 1}}}, ErrBadState},
		{"partial as long as the message", ReaderState{ChunkSize: 128, Streams: []StreamState{{ID: 4, Length: 2, Partial: []byte("ab")}}}, ErrBadState},
		{"partials over the bound", ReaderState{ChunkSize: 128, Streams: []StreamState{big, big2}}, ErrTooMuchPartial},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(nil))
			before := r.State()
			if err := r.Restore(tt.st); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if !reflect.DeepEqual(r.State(), before) {
				t.Fatal("a refused state changed the reader")
			}
		})
	}
}

// errCut stands for a read deadline: the source stops without ending.
var errCut = errors.New("cut")

// cutReader returns b, at most max bytes a read, then errCut.
type cutReader struct {
	b   []byte
	max int
}

func (c *cutReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, errCut
	}
	n := copy(p[:min(len(p), c.max)], c.b)
	c.b = c.b[n:]
	return n, nil
}

// TestStateAtEveryByte stops the source at every byte of a chunk stream,
// in the middle of headers (basic, message, extended timestamp) and
// payloads as well as between chunks, and carries on in a second Reader
// from the first's State (through JSON) and Unread bytes: the messages,
// the compressed type-1, 2 and 3 headers after the cut included, come out
// as from one Reader.
func TestStateAtEveryByte(t *testing.T) {
	all := cat(
		type0(2, 0, 4, TypeSetChunkSize, 0), be32(4),
		type0(4, 1000, 6, TypeAudio, 1), []byte("a0a0"),
		type0(6, 0xFFFFFF, 5, TypeVideo, 1), be32(0x01000000), []byte("v0v0"),
		hdr(3, 4), []byte("a0"),
		hdr(3, 6), be32(0x01000000), []byte("v"),
		hdr(2, 4, be24(20)...), []byte("a1a1"),
		hdr(1, 6, cat(be24(40), be24(3), []byte{TypeVideo})...), []byte("v1v"),
		hdr(3, 4), []byte("a1"),
		hdr(3, 4), []byte("a2a2"),
		hdr(3, 4), []byte("a2"),
		hdr(0, 320, cat(be24(7), be24(3), []byte{TypeAudio}, le32(1))...), []byte("big"),
		hdr(3, 320), // a new message on a chunk stream with a 2-byte basic header
		[]byte("BIG"),
	)
	want, err := readAll(t, all, 0)
	if err != nil {
		t.Fatal(err)
	}
	for cut := 0; cut <= len(all); cut++ {
		for _, step := range []int{1, 7, len(all)} {
			first := NewReader(&cutReader{b: all[:cut], max: step})
			var got []*Message
			for {
				m, err := first.ReadMessage()
				if errors.Is(err, errCut) {
					break
				}
				if err != nil {
					t.Fatalf("cut at %d, reads of %d: %v", cut, step, err)
				}
				got = append(got, m)
			}
			j, err := json.Marshal(first.State())
			if err != nil {
				t.Fatal(err)
			}
			var st ReaderState
			if err := json.Unmarshal(j, &st); err != nil {
				t.Fatal(err)
			}
			rest := append(first.Unread(), all[cut:]...)
			if int(first.BytesRead())+len(first.Unread()) != cut {
				t.Fatalf("cut at %d: %d bytes consumed and %d unread", cut, first.BytesRead(), len(first.Unread()))
			}
			second := NewReader(bytes.NewReader(rest))
			if err := second.Restore(st); err != nil {
				t.Fatalf("cut at %d: %v (state %s)", cut, err, j)
			}
			for {
				m, err := second.ReadMessage()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("cut at %d, reads of %d, after the restore: %v (state %s)", cut, step, err, j)
				}
				got = append(got, m)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("cut at %d, reads of %d:\ngot  %v\nwant %v", cut, step, got, want)
			}
		}
	}
}

// TestUnreadAfterRebuffer checks that bytes a Rebuffer took over and the
// new buffer has not read yet are part of Unread.
func TestUnreadAfterRebuffer(t *testing.T) {
	src := bytes.NewReader([]byte("0123456789"))
	r := NewReader(bufio.NewReaderSize(src, 16))
	if _, err := r.peek(4); err != nil {
		t.Fatal(err)
	}
	r.Rebuffer(bytes.NewReader(nil), 64)
	if got := string(r.Unread()); got != "0123456789" {
		t.Errorf("Unread = %q, want the bytes taken over", got)
	}
}

func TestRestoreChecksCut(t *testing.T) {
	st := func(cut CutChunk, partial string) ReaderState {
		return ReaderState{ChunkSize: 4, Streams: []StreamState{{ID: 4, Length: 10, Type: TypeAudio, Partial: []byte(partial)}}, Cut: &cut}
	}
	for _, tt := range []struct {
		name string
		st   ReaderState
		ok   bool
	}{
		{"cut in the first chunk", st(CutChunk{ID: 4, Left: 4}, ""), true},
		{"cut later", st(CutChunk{ID: 4, Left: 2}, "ab"), true},
		{"no such stream", st(CutChunk{ID: 5, Left: 2}, "ab"), false},
		{"nothing left", st(CutChunk{ID: 4, Left: 0}, "ab"), false},
		{"more than a chunk", st(CutChunk{ID: 4, Left: 5}, "ab"), false},
		{"past the message", st(CutChunk{ID: 4, Left: 3}, "abcdefgh"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := NewReader(bytes.NewReader(nil)).Restore(tt.st)
			if tt.ok && err != nil || !tt.ok && !errors.Is(err, ErrBadState) {
				t.Fatalf("Restore = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
