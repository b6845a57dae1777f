package server

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"

	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/media"
	"github.com/rtmp-server/rtmp-server/internal/media/mediatest"
	"github.com/rtmp-server/rtmp-server/internal/message"
)

// frameInterval is the time between the frames the gortmplib publisher
// sends; a frame's index is its timestamp divided by it.
const frameInterval = 40 * time.Millisecond

// TestGortmplibFrameTypeZeroLateJoin publishes real HEVC, AV1 and VP9 with
// gortmplib 1.0, which flags every Enhanced RTMP frame with the reserved
// frame type 0, and checks that a player joining in the middle gets the
// sequence header and then the GOP from its keyframe (which ffprobe
// identified when the samples were made), not the sequence header alone.
func TestGortmplibFrameTypeZeroLateJoin(t *testing.T) {
	for _, tc := range []struct {
		sample string
		codec  codecs.Codec
	}{
		{"hevc.hevc", nil},
		{"av1-aom.obu", &codecs.AV1{}},
		{"vp9.ivf", &codecs.VP9{}},
	} {
		t.Run(tc.sample, func(t *testing.T) {
			s, err := mediatest.Load(tc.sample)
			if err != nil {
				t.Fatal(err)
			}
			codec := tc.codec
			if s.FourCC == "hvc1" {
				codec = &codecs.H265{VPS: s.VPS, SPS: s.SPS, PPS: s.PPS}
			}
			// The late player joins after the second keyframe: the GOP cache
			// should hand it that keyframe at once.
			joinAt, lastKey := -1, -1
			for i, key := range s.Key {
				if key && i > 0 {
					lastKey, joinAt = i, i+2
					break
				}
			}
			if joinAt < 0 || joinAt >= len(s.Key) {
				t.Fatalf("sample %s has no second keyframe to join after", s.Name)
			}

			ts := startServer(t, nil)
			// A player from before the publisher sees every frame; once it
			// has the last one before the join, so has the server's cache.
			early := ts.dial(t, "live")
			if st, err := early.Play("k"); err != nil {
				t.Fatal(st, err)
			}
			u, err := url.Parse("rtmp://" + ts.addr + "/live#k")
			if err != nil {
				t.Fatal(err)
			}
			pub := &gortmplib.Client{URL: u, Publish: true}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := pub.Initialize(ctx); err != nil {
				t.Fatalf("gortmplib publish: %v", err)
			}
			defer pub.Close()
			_ = pub.NetConn().SetDeadline(time.Now().Add(15 * time.Second))
			track := &gortmplib.Track{Codec: codec}
			w := &gortmplib.Writer{Conn: pub, Tracks: []*gortmplib.Track{track}}
			if err := w.Initialize(); err != nil {
				t.Fatalf("gortmplib tracks: %v", err)
			}
			write := func(i int) {
				t.Helper()
				dts := time.Duration(i) * frameInterval
				var err error
				switch c := codec.(type) {
				case *codecs.H265:
					// B-frames: a composition offset, so CodedFrames carries it.
					err = w.WriteH265(track, dts+2*frameInterval, dts, s.Units[i])
				case *codecs.AV1:
					err = w.WriteAV1(track, dts, s.Units[i])
				case *codecs.VP9:
					err = w.WriteVP9(track, dts, s.Units[i][0])
				default:
					err = fmt.Errorf("codec %T", c)
				}
				if err != nil {
					t.Fatalf("gortmplib frame %d: %v", i, err)
				}
			}

			for i := range joinAt {
				write(i)
			}
			for seen := -1; seen < joinAt-1; {
				for _, m := range readMedia(t, early, 1) {
					if m.Type != message.TypeVideo || media.Video(m.Payload) == media.SequenceHeader {
						continue
					}
					seen = frameIndex(m)
					if ft := m.Payload[0] >> 4 & 0x07; ft != 0 {
						t.Fatalf("gortmplib sent frame type %d; this test is about frame type 0", ft)
					}
				}
			}

			late := ts.dial(t, "live")
			if st, err := late.Play("k"); err != nil {
				t.Fatal(st, err)
			}
			for i := joinAt; i < len(s.Units); i++ {
				write(i)
			}
			pub.Close()
			for {
				st, err := late.WaitStatus()
				if err != nil {
					t.Fatalf("late player: %v before the end of the stream", err)
				}
				if st.Code == "NetStream.Play.UnpublishNotify" {
					break
				}
			}
			var video []*chunk.Message
			for _, m := range late.Pending {
				if m.Type == message.TypeVideo {
					video = append(video, m)
				}
			}
			if len(video) == 0 || media.Video(video[0].Payload) != media.SequenceHeader {
				t.Fatalf("late player got %d video messages, want the sequence header first", len(video))
			}
			frames := video[1:]
			if len(frames) == 0 {
				t.Fatalf("late player got the sequence header and then no video")
			}
			if first := frameIndex(frames[0]); first != lastKey {
				t.Fatalf("late player's first frame is frame %d (keyframe per ffprobe: %v), want the cached keyframe %d", first, first >= 0 && first < len(s.Key) && s.Key[first], lastKey)
			}
			for j, m := range frames {
				if got, want := frameIndex(m), lastKey+j; got != want {
					t.Fatalf("late player's frame %d is frame %d, want %d", j, got, want)
				}
			}
			if got, want := len(frames), len(s.Units)-lastKey; got != want {
				t.Fatalf("late player got %d frames, want %d", got, want)
			}
		})
	}
}

func frameIndex(m *chunk.Message) int {
	return int(time.Duration(m.Timestamp) * time.Millisecond / frameInterval)
}
