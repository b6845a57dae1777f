package forward_test

import (
	"bytes"
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"

	"github.com/rtmp-server/rtmp-server/internal/media/mediatest"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// TestForwardHEVC publishes real HEVC as Enhanced RTMP (hvc1) with
// gortmplib, MediaMTX's RTMP stack, and checks that the target's player
// gets exactly the video messages the origin's player gets: the stream is
// forwarded as it is.
func TestForwardHEVC(t *testing.T) {
	t.Parallel()
	s, err := mediatest.Load("hevc.hevc")
	if err != nil {
		t.Fatal(err)
	}
	target := startNode(t, nil)
	origin := startNode(t, forwardTo(target.addr))
	atOrigin, err := play(t, origin.addr, "live", "k")
	if err != nil {
		t.Fatal(err)
	}
	atTarget, err := play(t, target.addr, "live", "k")
	if err != nil {
		t.Fatal(err)
	}

	u, err := url.Parse("rtmp://" + origin.addr + "/live#k")
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
	_ = pub.NetConn().SetDeadline(time.Now().Add(ioLimit))
	track := &gortmplib.Track{Codec: &codecs.H265{VPS: s.VPS, SPS: s.SPS, PPS: s.PPS}}
	w := &gortmplib.Writer{Conn: pub, Tracks: []*gortmplib.Track{track}}
	if err := w.Initialize(); err != nil {
		t.Fatalf("gortmplib tracks: %v", err)
	}
	// The forward joins with the codec headers; every frame then follows.
	origin.waitLive(t)
	const interval = 40 * time.Millisecond
	for i := range s.Units {
		dts := time.Duration(i) * interval
		if err := w.WriteH265(track, dts+2*interval, dts, s.Units[i]); err != nil {
			t.Fatalf("gortmplib frame %d: %v", i, err)
		}
	}
	want := len(s.Units) + 1 // and the sequence header
	testpeer.WaitFor(t, "every frame at both players", waitLimit, func() bool {
		return atOrigin.videoCount() >= want && atTarget.videoCount() >= want
	})
	a, b := atOrigin.videos(), atTarget.videos()
	if len(a) != len(b) {
		t.Fatalf("origin's player got %d video messages, target's %d", len(a), len(b))
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Fatalf("video message %d differs: origin %x…, target %x…", i, a[i][:min(len(a[i]), 16)], b[i][:min(len(b[i]), 16)])
		}
	}
	if fourCC := string(b[0][1:5]); fourCC != "hvc1" {
		t.Errorf("target's first video message has FourCC %q, want hvc1 (Enhanced RTMP)", fourCC)
	}
}
