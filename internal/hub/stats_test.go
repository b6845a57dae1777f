package hub

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/amf"
	"github.com/rtmp-server/rtmp-server/internal/message"
)

// feed records a synthetic publication into st: fps video frames per
// second of frameBytes each, a keyframe every gop frames, and 50 audio
// packets per second of audioBytes, for the given duration from start.
func feed(st *streamStats, start time.Time, dur time.Duration, fps, gop, frameBytes, audioBytes int) {
	frames := int(dur.Seconds() * float64(fps))
	for i := range frames {
		at := time.Duration(i) * time.Second / time.Duration(fps)
		p := inter(1)
		if i%gop == 0 {
			p = key(1)
		}
		p = append(p, make([]byte, frameBytes-len(p))...)
		st.record(NewPacket(message.TypeVideo, uint32(at/time.Millisecond), p, 128), p, start.Add(at))
	}
	for i := range int(dur.Seconds() * 50) {
		at := time.Duration(i) * 20 * time.Millisecond
		p := append(audio(1), make([]byte, audioBytes-3)...)
		st.record(NewPacket(message.TypeAudio, uint32(at/time.Millisecond), p, 128), p, start.Add(at))
	}
}

func near(got, want, tolerance float64) bool {
	return math.Abs(got-want) <= tolerance*want
}

func TestStatsMeasuredRates(t *testing.T) {
	tests := []struct {
		name       string
		fps, gop   int
		frameBytes int
		audioBytes int
		dur        time.Duration
		wantKF     time.Duration
	}{
		{"25 fps, 2 s GOP", 25, 50, 5000, 400, 20 * time.Second, 2 * time.Second},
		{"30 fps, 1 s GOP", 30, 30, 2000, 200, 10 * time.Second, time.Second},
		{"60 fps, 4 s GOP", 60, 240, 10000, 300, 30 * time.Second, 4 * time.Second},
		{"short: 2 s since start", 25, 25, 1000, 100, 2 * time.Second, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Unix(1_700_000_000, 300_000_000)
			var st streamStats
			feed(&st, start, tt.dur, tt.fps, tt.gop, tt.frameBytes, tt.audioBytes)
			var out StreamStats
			st.fill(&out, start.Add(tt.dur), start)
			wantVideo := float64(tt.fps * tt.frameBytes * 8)
			wantAudio := float64(50 * tt.audioBytes * 8)
			if !near(out.VideoBitrate, wantVideo, 0.05) {
				t.Errorf("video bitrate %.0f, want %.0f", out.VideoBitrate, wantVideo)
			}
			if !near(out.AudioBitrate, wantAudio, 0.05) {
				t.Errorf("audio bitrate %.0f, want %.0f", out.AudioBitrate, wantAudio)
			}
			if !near(out.FrameRate, float64(tt.fps), 0.05) {
				t.Errorf("frame rate %.2f, want %d", out.FrameRate, tt.fps)
			}
			if out.KeyframeInterval != tt.wantKF {
				t.Errorf("keyframe interval %v, want %v", out.KeyframeInterval, tt.wantKF)
			}
			if out.TimestampJumps != 0 || out.TimestampsBackwards != 0 {
				t.Errorf("anomalies %d jumps, %d backwards; want none", out.TimestampJumps, out.TimestampsBackwards)
			}
			wantHistory := min(int(tt.dur/time.Second), StatsHistory)
			if len(out.BitrateHistory) < wantHistory-1 || len(out.BitrateHistory) > wantHistory {
				t.Errorf("%d seconds of history, want %d", len(out.BitrateHistory), wantHistory)
			}
			for i, b := range out.BitrateHistory {
				if !near(b, wantVideo+wantAudio, 0.1) {
					t.Errorf("history[%d] = %.0f, want %.0f", i, b, wantVideo+wantAudio)
				}
			}
			if out.VideoCodec == nil || out.VideoCodec.ID != 7 || out.VideoCodec.FourCC != "avc1" {
				t.Errorf("video codec %+v, want 7/avc1", out.VideoCodec)
			}
			if out.AudioCodec == nil || out.AudioCodec.ID != 10 || out.AudioCodec.FourCC != "mp4a" {
				t.Errorf("audio codec %+v, want 10/mp4a", out.AudioCodec)
			}
		})
	}
}

func TestStatsRatesFallWhenMediaStops(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	var st streamStats
	feed(&st, start, 10*time.Second, 25, 50, 1000, 100)
	var out StreamStats
	st.fill(&out, start.Add(10*time.Second+StatsWindow+time.Second), start)
	if out.VideoBitrate != 0 || out.FrameRate != 0 {
		t.Errorf("after silence: %.0f bit/s, %.1f fps; want 0", out.VideoBitrate, out.FrameRate)
	}
}

func TestStatsTimestampAnomalies(t *testing.T) {
	var st streamStats
	now := time.Unix(1_700_000_000, 0)
	for _, ts := range []uint32{0, 40, 80, 20, 60, 10_000, 10_040} {
		p := inter(1)
		st.record(NewPacket(message.TypeVideo, ts, p, 128), p, now)
	}
	for _, ts := range []uint32{0, 5000, 4000} {
		p := audio(1)
		st.record(NewPacket(message.TypeAudio, ts, p, 128), p, now)
	}
	var out StreamStats
	st.fill(&out, now, now)
	if out.TimestampsBackwards != 2 || out.TimestampJumps != 2 {
		t.Errorf("%d backwards, %d jumps; want 2 and 2", out.TimestampsBackwards, out.TimestampJumps)
	}
	if out.AVDrift != (10_040-4000)*time.Millisecond {
		t.Errorf("A/V drift %v, want %v", out.AVDrift, (10_040-4000)*time.Millisecond)
	}
}

func TestStatsCodecs(t *testing.T) {
	tests := []struct {
		name    string
		typ     uint8
		payload []byte
		want    Codec
	}{
		{"classic AVC", message.TypeVideo, []byte{0x17, 0x00, 0, 0, 0}, Codec{ID: 7, FourCC: "avc1"}},
		{"classic VP6", message.TypeVideo, []byte{0x24, 0x00}, Codec{ID: 4}},
		{"enhanced HEVC", message.TypeVideo, []byte{0x90, 'h', 'v', 'c', '1', 0}, Codec{FourCC: "hvc1"}},
		{"enhanced multitrack AV1", message.TypeVideo, []byte{0x96, 0x01, 'a', 'v', '0', '1', 0}, Codec{FourCC: "av01"}},
		{"enhanced unprintable", message.TypeVideo, []byte{0x90, 0, 0xff, 'x', 'y'}, Codec{FourCC: "??xy"}},
		{"classic AAC", message.TypeAudio, []byte{0xAF, 0x01, 0}, Codec{ID: 10, FourCC: "mp4a"}},
		{"classic MP3", message.TypeAudio, []byte{0x2F, 0}, Codec{ID: 2, FourCC: ".mp3"}},
		{"enhanced Opus", message.TypeAudio, []byte{0x90, 'O', 'p', 'u', 's', 0}, Codec{FourCC: "Opus"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st streamStats
			st.record(NewPacket(tt.typ, 0, tt.payload, 128), tt.payload, time.Now())
			var out StreamStats
			st.fill(&out, time.Now(), time.Now())
			got := out.VideoCodec
			if tt.typ == message.TypeAudio {
				got = out.AudioCodec
			}
			if got == nil || *got != tt.want {
				t.Errorf("codec %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestStatsRecordDoesNotAllocate(t *testing.T) {
	var st streamStats
	p := key(1)
	pkt := NewPacket(message.TypeVideo, 0, p, 128)
	now := time.Now()
	allocs := testing.AllocsPerRun(1000, func() { st.record(pkt, p, now) })
	if allocs != 0 {
		t.Errorf("record allocates %.1f times per packet, want 0", allocs)
	}
}

// TestStreamStatsSnapshot checks a snapshot through the hub: publication,
// metadata, players, the GOP cache, and that no key appears.
func TestStreamStatsSnapshot(t *testing.T) {
	h := New()
	const secret = "sekret-key-123"
	pub, _, err := h.Publish("live", secret, "stream-1", &fakePublisher{id: 7}, opts())
	if err != nil {
		t.Fatal(err)
	}
	meta, err := amf.AppendAMF0All(nil, "onMetaData", amf.ECMAArray{
		{Key: "width", Value: 1280.0}, {Key: "height", Value: 720.0}, {Key: "framerate", Value: 25.0},
		{Key: "videocodecid", Value: 7.0}, {Key: "encoder", Value: "Lavf61.7.100" + strings.Repeat("\x01", 100)},
	})
	if err != nil {
		t.Fatal(err)
	}
	pub.Write(message.TypeDataAMF0, 0, meta, true)
	pub.Write(message.TypeVideo, 0, seqVideo, false)
	pub.Write(message.TypeVideo, 0, key(1), false)
	pub.Write(message.TypeVideo, 40, inter(2), false)
	q := NewQueue(nil)
	p := NewPlayer(9, secret, q, &events{})
	p.Addr = netip.MustParseAddr("192.0.2.7")
	if _, err := h.Play("live", p); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Play("waiting", NewPlayer(10, "k", NewQueue(nil), &events{})); err != nil {
		t.Fatal(err)
	}
	q.Drain(nil)

	all := h.StreamStats()
	if len(all) != 2 || all[0].Channel != "live" || all[1].Channel != "waiting" || all[1].Published {
		t.Fatalf("streams %+v, want live (published) and waiting", all)
	}
	s, ok := h.StreamStatsOf("live")
	if !ok {
		t.Fatal("no stats for live")
	}
	if !s.Published || s.StreamID != "stream-1" || s.SessionID != 7 || s.MessagesIn != 4 {
		t.Errorf("publication %+v", s)
	}
	if s.VideoFrames != 2 || s.Keyframes != 1 || s.GOPCachePackets != 2 {
		t.Errorf("%d frames, %d keyframes, %d cached; want 2, 1, 2", s.VideoFrames, s.Keyframes, s.GOPCachePackets)
	}
	if m := s.Metadata; m == nil || m.Width != 1280 || m.Height != 720 || m.FrameRate != 25 || m.VideoCodecID != "7" ||
		m.Encoder != "Lavf61.7.100"+strings.Repeat("?", maxEncoderLen-len("Lavf61.7.100")) {
		t.Errorf("metadata %+v", s.Metadata)
	}
	if len(s.Players) != 1 || s.Players[0].SessionID != 9 || s.Players[0].Addr != p.Addr || !s.Players[0].Playing ||
		s.Players[0].BytesSent == 0 || s.Players[0].Since.IsZero() {
		t.Errorf("players %+v", s.Players)
	}
	if strings.Contains(fmt.Sprintf("%+v", all), secret) {
		t.Errorf("a snapshot shows the stream key")
	}
	// The totals a scrape reads: the same figures, the players summed.
	if s.PlayerCount != 1 || s.PlayerBytesSent != s.Players[0].BytesSent {
		t.Errorf("%d players, %d bytes sent; want 1 and %d", s.PlayerCount, s.PlayerBytesSent, s.Players[0].BytesSent)
	}
	totals := h.StreamTotals()
	if len(totals) != 2 || totals[0].Channel != "live" || totals[0].Players != nil || totals[0].PlayerCount != 1 ||
		totals[0].PlayerBytesSent != s.PlayerBytesSent || totals[0].BytesIn != s.BytesIn || totals[1].PlayerCount != 1 {
		t.Errorf("totals %+v, want those of %+v without the player list", totals, all)
	}

	h.Unpublish(pub)
	if s, _ := h.StreamStatsOf("live"); s.Published || s.BytesIn != 0 {
		t.Errorf("after unpublish: %+v", s)
	}
}

// BenchmarkStatsRecord is the measurement's cost per media message.
func BenchmarkStatsRecord(b *testing.B) {
	var st streamStats
	p := append(inter(1), make([]byte, 4000)...)
	pkt := NewPacket(message.TypeVideo, 0, p, 128)
	b.ReportAllocs()
	for b.Loop() {
		st.record(pkt, p, time.Now())
	}
}
