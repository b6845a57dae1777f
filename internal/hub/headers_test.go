package hub

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rtmp-server/rtmp-server/internal/message"
)

// Enhanced RTMP v2 multitrack payloads; the last byte tags each one.
func mtVideo(frameType, packetType, track byte, tag byte) []byte {
	return []byte{0x80 | frameType<<4 | 6, packetType, 'a', 'v', 'c', '1', track, 0, 0, 0, tag}
}
func mtAudio(packetType, track byte, tag byte) []byte {
	return []byte{0x95, packetType, 'O', 'p', 'u', 's', track, tag}
}

// mtManyVideo is a ManyTracks video message carrying the given tracks.
func mtManyVideo(frameType, packetType byte, tag byte, tracks ...byte) []byte {
	p := []byte{0x80 | frameType<<4 | 6, 0x10 | packetType, 'a', 'v', 'c', '1'}
	for _, tr := range tracks {
		p = append(p, tr, 0, 0, 1, tag)
	}
	return p
}

func tags(msgs []sentMessage) string {
	var b strings.Builder
	for i, m := range msgs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d:%d", m.typ, m.tag)
	}
	return b.String()
}

// TestMultitrackHeadersPerTrack: a late joiner of a multitrack stream gets
// every track's header (not only the last one of each media type), the
// GOP starts at a keyframe of the default track, and headers re-sent
// unchanged or for another track do not drop the cached GOP.
func TestMultitrackHeadersPerTrack(t *testing.T) {
	type write struct {
		typ     uint8
		payload []byte
	}
	v, a := message.TypeVideo, message.TypeAudio
	tests := []struct {
		name   string
		writes []write
		want   string // type:tag of what a joiner gets
	}{
		{
			name: "two video and two audio tracks",
			writes: []write{
				{v, []byte{0x17, 0x00, 0, 0, 0, 10}}, {v, mtVideo(1, 0, 1, 11)}, {a, []byte{0xAF, 0x00, 0x12, 20}}, {a, mtAudio(0, 1, 21)},
				{v, []byte{0x17, 0x01, 0, 0, 0, 30}}, {v, mtVideo(1, 1, 1, 31)}, {a, []byte{0xAF, 0x01, 40}}, {a, mtAudio(1, 1, 41)},
				{v, []byte{0x27, 0x01, 0, 0, 0, 32}}, {v, mtVideo(1, 1, 1, 33)}, // track 1's keyframe is not a GOP start
				{v, mtVideo(1, 0, 1, 11)}, // track 1's header again, unchanged
			},
			want: "9:10 9:11 8:20 8:21 9:30 9:31 8:40 8:41 9:32 9:33",
		},
		{
			name: "a changed header of another track drops the GOP",
			writes: []write{
				{v, []byte{0x17, 0x00, 0, 0, 0, 10}}, {v, mtVideo(1, 0, 1, 11)},
				{v, []byte{0x17, 0x01, 0, 0, 0, 30}}, {v, mtVideo(1, 1, 1, 31)},
				{v, mtVideo(1, 0, 1, 12)},
				{v, []byte{0x27, 0x01, 0, 0, 0, 32}},
			},
			want: "9:10 9:12",
		},
		{
			name: "many tracks header superseded for one track",
			writes: []write{
				{v, mtManyVideo(1, 0, 10, 0, 1, 2)}, {v, mtVideo(1, 0, 2, 12)},
				{v, mtManyVideo(1, 1, 30, 0, 1, 2)},
			},
			want: "9:10 9:12 9:30",
		},
		{
			name: "header replaced for all its tracks is dropped",
			writes: []write{
				{v, mtManyVideo(1, 0, 10, 1, 2)}, {v, mtManyVideo(1, 0, 11, 1, 2)}, {a, mtAudio(0, 3, 20)}, {a, mtAudio(0, 3, 21)},
			},
			want: "9:11 8:21",
		},
		{
			name: "default track header starts a new sequence",
			writes: []write{
				{v, mtVideo(1, 0, 0, 10)}, {v, mtVideo(1, 1, 0, 30)}, {v, mtVideo(1, 0, 0, 10)}, {v, mtVideo(2, 1, 0, 32)},
			},
			want: "9:10",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New()
			pub, _, err := h.Publish("ch", "k", "id", &fakePublisher{id: 1}, opts())
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range tt.writes {
				pub.Write(w.typ, uint32(i), w.payload, false)
			}
			q := NewQueue(nil)
			if _, err := h.Play("ch", NewPlayer(2, "k", q, &events{})); err != nil {
				t.Fatal(err)
			}
			if got := tags(received(t, q)); got != tt.want {
				t.Fatalf("joined with %s, want %s", got, tt.want)
			}
		})
	}
}

// TestCodecHeadersBounded: headers for more tracks than MaxCodecHeaders
// are forwarded but not kept.
func TestCodecHeadersBounded(t *testing.T) {
	h := New()
	pub := mustPublish(t, h, "ch", "k", "id", &fakePublisher{id: 1}, opts())
	for i := range MaxCodecHeaders + 8 {
		pub.Write(message.TypeAudio, 0, mtAudio(0, byte(i), byte(i)), false)
	}
	q := NewQueue(nil)
	mustPlay(t, h, "ch", NewPlayer(2, "k", q, &events{}))
	got := received(t, q)
	if len(got) != MaxCodecHeaders || got[len(got)-1].tag != MaxCodecHeaders-1 {
		t.Fatalf("kept %d headers (last %v), want the first %d", len(got), got[len(got)-1], MaxCodecHeaders)
	}
	// A header for a kept track still replaces the old one.
	pub.Write(message.TypeAudio, 0, mtAudio(0, 0, 200), false)
	q2 := NewQueue(nil)
	mustPlay(t, h, "ch", NewPlayer(3, "k", q2, &events{}))
	got = received(t, q2)
	if len(got) != MaxCodecHeaders || got[len(got)-1].tag != 200 {
		t.Fatalf("after replacing track 0's header: %d headers, last %v", len(got), got[len(got)-1])
	}
}
