package hub

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/message"
)

// sentMessage is what a player received, decoded from the wire.
type sentMessage struct {
	typ uint8
	ts  uint32
	tag byte // last payload byte
}

func (m sentMessage) String() string { return fmt.Sprintf("%d@%d", m.typ, m.ts) }

// received decodes the media queued for a player.
func received(t *testing.T, q *Queue) []sentMessage {
	t.Helper()
	var out []sentMessage
	for _, it := range q.Drain(nil) {
		if it.Packet == nil {
			continue
		}
		m, err := chunk.NewReader(bytes.NewReader(it.Packet.Wire(WireStreamID))).ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sentMessage{typ: m.Type, ts: m.Timestamp, tag: m.Payload[len(m.Payload)-1]})
	}
	return out
}

// Enhanced RTMP HEVC: SequenceStart, keyframe and inter frame (CodedFramesX).
var (
	exSeqHEVC = []byte{0x90, 'h', 'v', 'c', '1', 1, 2, 3}
)

func exKey(n byte) []byte   { return []byte{0x93, 'h', 'v', 'c', '1', 0, n} }
func exInter(n byte) []byte { return []byte{0xA3, 'h', 'v', 'c', '1', 0, n} }

// TestJoinTimestampsNeverGoBackwards replays what GStreamer's flvmux sends
// (metadata, codec headers and media from 0, then onMetaData again about
// 4 s in) and checks what a player joining afterwards receives in each
// cache mode: the first message carries the timestamp of the media that
// follows the headers, and no timestamp is lower than one before it.
func TestJoinTimestampsNeverGoBackwards(t *testing.T) {
	meta := []byte{2, 0, 10, 'o', 'n', 'M', 'e', 't', 'a', 'D', 'a', 't', 'a', 0xEE}
	type write struct {
		typ     uint8
		ts      uint32
		payload []byte
	}
	av := func(vhdr []byte, keyf, interf func(byte) []byte) []write {
		w := []write{{message.TypeDataAMF0, 0, meta}, {message.TypeVideo, 0, vhdr}, {message.TypeAudio, 0, seqAudio}}
		ts := uint32(0)
		for i := range 110 {
			f := interf(byte(i))
			if i%75 == 0 { // a keyframe every 3 s
				f = keyf(byte(i))
			}
			w = append(w, write{message.TypeVideo, ts, f}, write{message.TypeAudio, ts + 6, audio(byte(i))})
			if ts == 4080 {
				w = append(w, write{message.TypeDataAMF0, 4106, meta})
			}
			ts += 40
		}
		return w
	}
	audioOnly := []write{{message.TypeDataAMF0, 0, meta}, {message.TypeAudio, 0, seqAudio}}
	for i := range 200 {
		ts := uint32(i * 23)
		audioOnly = append(audioOnly, write{message.TypeAudio, ts, audio(byte(i))})
		if i == 178 {
			audioOnly = append(audioOnly, write{message.TypeDataAMF0, 4106, meta})
		}
	}
	classic := av(seqVideo, key, inter)
	enhanced := av(exSeqHEVC, exKey, exInter)
	live := []write{{message.TypeAudio, 4406, audio(1)}, {message.TypeVideo, 4440, key(2)}, {message.TypeAudio, 4446, audio(3)}}
	exLive := []write{{message.TypeAudio, 4406, audio(1)}, {message.TypeVideo, 4440, exKey(2)}, {message.TypeAudio, 4446, audio(3)}}

	tests := []struct {
		name      string
		writes    []write
		live      []write
		gopBytes  int64
		noCache   bool
		clear     bool
		wantFirst uint32 // timestamp of the first message
		wantCount int    // messages received in all
	}{
		{name: "gop cache", writes: classic, live: live, gopBytes: 1 << 20, wantFirst: 3000, wantCount: 3 + 2*35 + 3},
		{name: "cache=no", writes: classic, live: live, gopBytes: 1 << 20, noCache: true, wantFirst: 4360, wantCount: 3 + 2},
		{name: "cache=clear", writes: classic, live: live, gopBytes: 1 << 20, clear: true, wantFirst: 4360, wantCount: 3 + 2},
		{name: "GOP_CACHE_SIZE_MB=0", writes: classic, live: live, gopBytes: 0, wantFirst: 4360, wantCount: 3 + 2},
		{name: "enhanced gop cache", writes: enhanced, live: exLive, gopBytes: 1 << 20, wantFirst: 3000, wantCount: 3 + 2*35 + 3},
		{name: "enhanced cache=no", writes: enhanced, live: exLive, gopBytes: 1 << 20, noCache: true, wantFirst: 4360, wantCount: 3 + 2},
		{name: "audio only", writes: audioOnly, live: []write{{message.TypeAudio, 4600, audio(1)}}, gopBytes: 1 << 20, wantFirst: 199 * 23, wantCount: 2 + 1},
		{name: "headers only", writes: []write{{message.TypeDataAMF0, 4106, meta}, {message.TypeVideo, 0, seqVideo}, {message.TypeAudio, 0, seqAudio}},
			live: live, gopBytes: 1 << 20, wantFirst: 0, wantCount: 3 + 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New()
			o := opts()
			o.GOPCacheBytes = tt.gopBytes
			pub, _, err := h.Publish("ch", "k", "id", &fakePublisher{id: 1}, o)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.writes {
				pub.Write(w.typ, w.ts, w.payload, w.typ == message.TypeDataAMF0)
			}
			q := NewQueue(nil)
			p := NewPlayer(2, "k", q, &events{})
			p.NoCache, p.ClearCache = tt.noCache, tt.clear
			if _, err := h.Play("ch", p); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.live {
				pub.Write(w.typ, w.ts, w.payload, false)
			}
			pub.Sync()
			got := received(t, q)
			if len(got) != tt.wantCount {
				t.Fatalf("received %d messages, want %d: %v", len(got), tt.wantCount, got)
			}
			if got[0].ts != tt.wantFirst {
				t.Errorf("first message at %d, want %d: %v", got[0].ts, tt.wantFirst, got[:min(len(got), 6)])
			}
			for i := 1; i < len(got); i++ {
				if got[i].ts < got[i-1].ts {
					t.Fatalf("time goes backwards at message %d: %v", i, got[:min(len(got), i+2)])
				}
			}
		})
	}
}
