package chunk

import (
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
