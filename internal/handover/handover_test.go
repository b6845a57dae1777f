package handover

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/session"
)

// sample is a state with a publisher cut in the middle of a chunk, a
// player skipping to a keyframe and a stream's headers.
func sample() *State {
	return &State{
		Saved: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC),
		Sessions: []Session{
			{
				ID: 7, Local: "127.0.0.1:1935", Remote: "127.0.0.1:50000", FlashVer: "FMLE/3.0",
				Protocol: session.State{
					Connected: true, App: "live", LastStreamID: 1, Publishing: &session.Stream{ID: 1, Name: "key"},
					PeerWindowAckSize: 2500000, LastAck: 100, WindowAckSize: 5000000, OutChunkSize: 4096,
					In: chunk.ReaderState{ChunkSize: 4096, BytesRead: 5000, Streams: []chunk.StreamState{
						{ID: 6, Timestamp: 40, Delta: 40, Length: 9000, Type: 9, MessageStreamID: 1, Partial: []byte("half")},
					}, Cut: &chunk.CutChunk{ID: 6, Left: 100}},
				},
				Unread: []byte{0xc4},
				Publisher: &Publisher{StreamID: "abc", Started: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC),
					ForwardURLs: []string{"rtmp://origin.example/live/key"}},
			},
			{
				ID: 8, Local: "[::1]:1935", Remote: "[::1]:50001",
				Protocol: session.State{
					Connected: true, App: "live", LastStreamID: 1, Playing: &session.Stream{ID: 1, Name: "key"},
					OutChunkSize: 4096, In: chunk.ReaderState{ChunkSize: 128, BytesRead: 300},
				},
				Player: &Player{ChunkSize: 4096, SkipToKeyframe: true, NoAudio: true},
			},
		},
		Streams: []Stream{{Channel: "live", Packets: []Packet{
			{Type: 18, Metadata: true, Payload: []byte("meta")},
			{Type: 9, Timestamp: 0, Payload: []byte{0x17, 0, 0, 0, 0}},
		}}},
	}
}

func encoded(t testing.TB, st *State) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Encode(&b, st); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestRoundTrip(t *testing.T) {
	want := sample()
	got, err := Decode(bytes.NewReader(encoded(t, want)))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got\n%+v\nwant\n%+v", got, want)
	}
}

func TestDecodeRefuses(t *testing.T) {
	tests := []struct {
		name   string
		change func(st *State)
		raw    string // used instead of the changed sample when set
		want   string
	}{
		{name: "not JSON", raw: "{", want: "unexpected end"},
		{name: "other format", raw: `{"format":"x","version":1}`, want: `format "x"`},
		{name: "other version", raw: `{"format":"rtmp-server-handover","version":2,"new":1}`, want: "version 2"},
		{name: "unknown field", raw: `{"format":"rtmp-server-handover","version":1,"sessions":[],"extra":1}`, want: "unknown field"},
		{name: "session twice", change: func(st *State) { st.Sessions[1].ID = 7 }, want: "session 7 twice"},
		{name: "same socket twice", change: func(st *State) {
			st.Sessions[1].Local, st.Sessions[1].Remote = st.Sessions[0].Local, st.Sessions[0].Remote
		}, want: "twice"},
		{name: "bad address", change: func(st *State) { st.Sessions[0].Remote = "nowhere" }, want: "address"},
		{name: "not connected", change: func(st *State) { st.Sessions[0].Protocol.Connected = false }, want: "not connected"},
		{name: "publisher without stream", change: func(st *State) { st.Sessions[0].Protocol.Publishing = nil }, want: "disagree"},
		{name: "player without role", change: func(st *State) { st.Sessions[1].Player = nil }, want: "disagree"},
		{name: "unread too long", change: func(st *State) { st.Sessions[0].Unread = make([]byte, MaxUnread+1) }, want: "unread"},
		{name: "player chunk size 0", change: func(st *State) { st.Sessions[1].Player.ChunkSize = 0 }, want: "chunk size"},
		{name: "key too long", change: func(st *State) {
			st.Sessions[0].Protocol.Publishing.Name = strings.Repeat("k", MaxText+1)
		}, want: "key"},
		{name: "stream twice", change: func(st *State) { st.Streams = append(st.Streams, st.Streams[0]) }, want: "twice"},
		{name: "stream packet type", change: func(st *State) { st.Streams[0].Packets[0].Type = 20 }, want: "message type 20"},
		{name: "too many forward URLs", change: func(st *State) {
			st.Sessions[0].Publisher.ForwardURLs = make([]string, MaxForwardURLs+1)
		}, want: "forward URLs"},
		{name: "empty forward URL", change: func(st *State) { st.Sessions[0].Publisher.ForwardURLs = []string{""} }, want: "forward URL"},
		{name: "too many packets", change: func(st *State) {
			st.Streams[0].Packets = make([]Packet, MaxStreamPackets+1)
		}, want: "packets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(tt.raw)
			if tt.raw == "" {
				st := sample()
				tt.change(st)
				data = encoded(t, st)
			}
			_, err := Decode(bytes.NewReader(data))
			if !errors.Is(err, ErrBadState) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Decode = %v, want ErrBadState mentioning %q", err, tt.want)
			}
		})
	}
}

// TestFuzzSeeds keeps the committed corpus in step with the sample.
func TestFuzzSeeds(t *testing.T) {
	path := filepath.Join("testdata", "fuzz", "FuzzDecode", "sample")
	want := "go test fuzz v1\n[]byte(" + strconvQuote(encoded(t, sample())) + ")\n"
	if os.Getenv("HANDOVER_WRITE_SEEDS") == "1" {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != want {
		t.Fatalf("%s is not the sample's encoding (HANDOVER_WRITE_SEEDS=1 rewrites it): %v", path, err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encoded(f, sample()))
	f.Add([]byte(`{"format":"rtmp-server-handover","version":1,"sessions":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := Decode(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrBadState) {
				t.Fatalf("error %v does not wrap ErrBadState", err)
			}
			return
		}
		again, err := Decode(bytes.NewReader(encoded(t, st)))
		if err != nil {
			t.Fatalf("a decoded state does not decode again: %v", err)
		}
		if !reflect.DeepEqual(again, st) {
			t.Fatalf("encode/decode changed the state:\n%+v\n%+v", st, again)
		}
	})
}

func strconvQuote(b []byte) string { return strconv.Quote(string(b)) }
