package server

// Enhanced RTMP v2 multitrack: a publisher built on the project's client
// sends two video and two audio tracks; gortmplib (MediaMTX's RTMP stack,
// an independent implementation that parses multitrack) joins late.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	gmessage "github.com/bluenviron/gortmplib/pkg/message"

	"github.com/rtmp-server/rtmp-server/internal/amf"
	"github.com/rtmp-server/rtmp-server/internal/client"
	"github.com/rtmp-server/rtmp-server/internal/message"
)

// H.264 parameter sets (baseline profile) and the avcC record carrying them.
var (
	testSPS  = []byte{0x67, 0x42, 0xC0, 0x1E, 0xD9, 0x00, 0xA0, 0x47, 0xFE, 0xC8}
	testPPS  = []byte{0x68, 0xCE, 0x3C, 0x80}
	testAVCC = func() []byte {
		b := []byte{1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, byte(len(testSPS))}
		b = append(b, testSPS...)
		b = append(b, 1, 0, byte(len(testPPS)))
		return append(b, testPPS...)
	}()
	// OpusHead: version 1, 2 channels, pre-skip 312, 48 kHz, gain 0, mapping family 0.
	testOpusHead = []byte{'O', 'p', 'u', 's', 'H', 'e', 'a', 'd', 1, 2, 0x38, 0x01, 0x80, 0xBB, 0, 0, 0, 0, 0}
)

// avccFrame is one NAL unit of type naluType in AVCC form, tagged.
func avccFrame(naluType byte, tag byte) []byte {
	nalu := []byte{0x60 | naluType, 0x88, tag}
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(nalu))), nalu...)
}

// Multitrack OneTrack payloads (enhanced-rtmp-v2): header byte, multitrack
// type and packet type, FourCC, track ID, body.
func oneTrackVideo(frameType, packetType, track byte, body []byte) []byte {
	p := []byte{0x80 | frameType<<4 | 6, packetType, 'a', 'v', 'c', '1', track}
	return append(p, body...)
}

func oneTrackAudio(packetType, track byte, fourCC string, body []byte) []byte {
	p := append([]byte{0x95, packetType}, fourCC...)
	p = append(p, track)
	return append(p, body...)
}

// publishMultitrack publishes 3 s of two H.264 video tracks (0 classic, 1
// multitrack) and two audio tracks (0 classic AAC, 1 multitrack Opus).
// Track 0 has one keyframe, at 0; track 1 one every second, so its
// keyframes must not restart the GOP cache. It returns the payload bytes
// sent.
func publishMultitrack(t *testing.T, ts *testServer) (sent uint64) {
	t.Helper()
	pub := ts.dial(t, "live")
	if st, err := pub.Publish("key"); err != nil {
		t.Fatal(st, err)
	}
	t.Cleanup(func() { pub.Close() })
	write := func(typ uint8, ts uint32, p []byte) {
		t.Helper()
		if err := pub.WriteMedia(typ, ts, p); err != nil {
			t.Fatal(err)
		}
		sent += uint64(len(p))
	}
	write(message.TypeVideo, 0, append([]byte{0x17, 0, 0, 0, 0}, testAVCC...))
	write(message.TypeVideo, 0, oneTrackVideo(1, 0, 1, testAVCC))
	write(message.TypeAudio, 0, []byte{0xAF, 0, 0x12, 0x10})
	write(message.TypeAudio, 0, oneTrackAudio(0, 1, "Opus", testOpusHead))
	for i := range 76 {
		ms := uint32(i * 40)
		v0 := append([]byte{0x27, 1, 0, 0, 0}, avccFrame(1, byte(i))...)
		if i == 0 {
			v0 = append([]byte{0x17, 1, 0, 0, 0}, avccFrame(5, byte(i))...)
		}
		v1 := oneTrackVideo(2, 1, 1, append([]byte{0, 0, 0}, avccFrame(1, byte(i))...))
		if i%25 == 0 {
			v1 = oneTrackVideo(1, 1, 1, append([]byte{0, 0, 0}, avccFrame(5, byte(i))...))
		}
		write(message.TypeVideo, ms, v0)
		write(message.TypeVideo, ms, v1)
		write(message.TypeAudio, ms, []byte{0xAF, 1, 0x21, byte(i)})
		write(message.TypeAudio, ms, oneTrackAudio(1, 1, "Opus", []byte{0xFC, byte(i)}))
	}
	return sent
}

// dialGortmplib connects gortmplib as a player of live/key.
func dialGortmplib(t *testing.T, ts *testServer) *gortmplib.Client {
	t.Helper()
	u, err := url.Parse("rtmp://" + ts.addr + "/live#key")
	if err != nil {
		t.Fatal(err)
	}
	c := &gortmplib.Client{URL: u}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Initialize(ctx); err != nil {
		t.Fatalf("gortmplib connect and play: %v", err)
	}
	t.Cleanup(c.Close)
	if err := c.NetConn().SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMultitrackLateJoinGortmplib: a player joining a multitrack stream
// after its headers gets every track's header before that track's first
// frame, and each video track starts on a keyframe.
func TestMultitrackLateJoinGortmplib(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	sent := publishMultitrack(t, ts)
	waitFor(t, "the publication's media", 10*time.Second, func() bool {
		return ts.Hub().Stats().BytesIn >= sent
	})

	t.Run("message order", func(t *testing.T) {
		// gortmplib's message layer parses each message; the order is
		// checked here, message by message.
		c := dialGortmplib(t, ts)
		header := map[string]bool{}
		frames := map[string]int{}
		saw := func(track string, isHeader bool, desc string) {
			if isHeader {
				header[track] = true
				return
			}
			if !header[track] {
				t.Fatalf("%s frame (%s) before its header; headers so far %v", track, desc, header)
			}
			frames[track]++
		}
		for len(frames) < 4 || frames["video 1"] < 10 {
			msg, err := c.Read()
			if err != nil {
				t.Fatalf("read: %v (frames so far %v)", err, frames)
			}
			switch m := msg.(type) {
			case *gmessage.Video:
				saw("video 0", m.Type == gmessage.VideoTypeConfig, fmt.Sprint(m.Type))
			case *gmessage.VideoExMultitrack:
				_, isHeader := m.Wrapped.(*gmessage.VideoExSequenceStart)
				saw(fmt.Sprintf("video %d", m.TrackID), isHeader, fmt.Sprintf("%T", m.Wrapped))
			case *gmessage.Audio:
				saw("audio 0", m.AACType == gmessage.AudioAACTypeConfig, fmt.Sprint(m.AACType))
			case *gmessage.AudioExMultitrack:
				_, isHeader := m.Wrapped.(*gmessage.AudioExSequenceStart)
				saw(fmt.Sprintf("audio %d", m.TrackID), isHeader, fmt.Sprintf("%T", m.Wrapped))
			}
		}
	})

	t.Run("reader", func(t *testing.T) {
		// gortmplib's Reader sets up each track from its header and
		// decodes the frames.
		r := &gortmplib.Reader{Conn: dialGortmplib(t, ts)}
		if err := r.Initialize(); err != nil {
			t.Fatalf("gortmplib reader: %v", err)
		}
		tracks := r.Tracks()
		var kinds []string
		for _, tr := range tracks {
			kinds = append(kinds, fmt.Sprintf("%T", tr.Codec))
		}
		if got, want := fmt.Sprint(kinds), "[*codecs.H264 *codecs.H264 *codecs.MPEG4Audio *codecs.Opus]"; got != want {
			t.Fatalf("tracks %s, want %s", got, want)
		}
		got := make([]int, len(tracks))
		firstIDR := make([]bool, len(tracks))
		for i, tr := range tracks {
			switch tr.Codec.(type) {
			case *codecs.H264:
				r.OnDataH264(tr, func(_, _ time.Duration, au [][]byte) {
					if len(au) == 0 || au[0][0]&0x1F == 7 {
						return // parameter sets from a classic sequence header
					}
					if got[i] == 0 {
						firstIDR[i] = au[0][0]&0x1F == 5
					}
					got[i]++
				})
			case *codecs.MPEG4Audio:
				r.OnDataMPEG4Audio(tr, func(time.Duration, []byte) { got[i]++ })
			case *codecs.Opus:
				r.OnDataOpus(tr, func(time.Duration, []byte) { got[i]++ })
			}
		}
		for min(got[0], got[1], got[2], got[3]) < 50 {
			if err := r.Read(); err != nil {
				t.Fatalf("gortmplib read: %v (frames per track %v)", err, got)
			}
		}
		if !firstIDR[0] || !firstIDR[1] {
			t.Fatalf("first frame of each video track is an IDR picture: %v", firstIDR[:2])
		}
	})
}

// TestConnectStatesEnhancedRTMP: the connect result states what the
// server does with Enhanced RTMP (enhanced-rtmp-v2, "Enhancing
// NetConnection connect Command").
func TestConnectStatesEnhancedRTMP(t *testing.T) {
	ts := startServer(t, nil)
	raw, err := client.Dial(ts.addr, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := raw.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	txn, err := raw.Call(0, "connect", amf.Object{
		{Key: "app", Value: "live"},
		{Key: "fourCcList", Value: amf.StrictArray{"hvc1", "av01"}},
		{Key: "capsEx", Value: float64(2)},
	})
	if err != nil {
		t.Fatal(err)
	}
	var props amf.Object
	for props == nil {
		cmd, err := raw.ReadCommand()
		if err != nil {
			t.Fatal(err)
		}
		if cmd.Txn == txn && cmd.Name == "_result" && len(cmd.Values) > 0 {
			props, _ = cmd.Values[0].(amf.Object)
		}
	}
	list, _ := props.Get("fourCcList")
	if got := fmt.Sprint(list); got != "[av01 vp09 vp08 hvc1 avc1 ac-3 ec-3 Opus .mp3 fLaC mp4a]" {
		t.Errorf("fourCcList %s", got)
	}
	for _, name := range []string{"videoFourCcInfoMap", "audioFourCcInfoMap"} {
		m, _ := props.Get(name)
		o, _ := m.(amf.Object)
		if n, ok := o.Number("*"); !ok || n != 4 {
			t.Errorf("%s %v, want {*: 4 (CanForward)}", name, m)
		}
	}
	if n, ok := props.Number("capsEx"); !ok || n != 2|4|8 {
		t.Errorf("capsEx %v, want Multitrack|ModEx|TimestampNanoOffset (14)", n)
	}
	if props.String("fmsVer") == "" {
		t.Error("fmsVer missing")
	}
}

// TestEnhancedPayloadsForwardedUntouched: Enhanced RTMP v2 payloads
// (ModEx, many tracks with many codecs, the audio FourCCs, and a malformed
// multitrack message) reach a player byte for byte and in order, and a
// late joiner gets every header.
func TestEnhancedPayloadsForwardedUntouched(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	pub := ts.dial(t, "live")
	if st, err := pub.Publish("key"); err != nil {
		t.Fatal(st, err)
	}
	player := ts.dial(t, "live")
	if st, err := player.Play("key"); err != nil {
		t.Fatal(st, err)
	}
	u24 := func(n int) []byte { return []byte{byte(n >> 16), byte(n >> 8), byte(n)} }
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	manyCodecsHeader := cat([]byte{0x96, 0x20}, []byte("avc1\x00"), u24(len(testAVCC)), testAVCC,
		[]byte("hvc1\x01"), u24(3), []byte{1, 2, 3})
	type media struct {
		typ     uint8
		payload []byte
		header  bool
	}
	sent := []media{
		{message.TypeVideo, manyCodecsHeader, true},
		{message.TypeAudio, cat([]byte{0x90}, []byte("fLaC"), []byte("fLaC\x80\x00\x00\x22")), true},
		{message.TypeAudio, cat([]byte{0x95, 0x00}, []byte("ac-3\x01"), []byte{0x0B, 0x77}), true},
		{message.TypeAudio, cat([]byte{0x95, 0x00}, []byte("ec-3\x02"), []byte{0x0B, 0x77}), true},
		{message.TypeVideo, cat([]byte{0x96, 0x21}, []byte("avc1\x00"), u24(8), avccFrame(5, 1), []byte("hvc1\x01"), u24(4), []byte{0, 0, 0, 9}), false},
		// ModEx: a nanosecond offset of 500000 before a multitrack frame of track 1.
		{message.TypeVideo, cat([]byte{0xA7, 2, 0x07, 0xA1, 0x20, 0x06, 0x03}, []byte("hvc1\x01"), []byte{9}), false},
		{message.TypeAudio, cat([]byte{0x91}, []byte("fLaC"), []byte{0xFF, 0xF8}), false},
		{message.TypeAudio, cat([]byte{0x95, 0x11}, []byte("ac-3\x01"), u24(2), []byte{0x0B, 0x77}, []byte{2}, u24(1), []byte{0}), false},
		{message.TypeAudio, cat([]byte{0x91}, []byte(".mp3"), []byte{0xFF, 0xFB}), false},
		{message.TypeVideo, []byte{0x96, 0x13, 'a', 'v'}, false}, // malformed: forwarded all the same
	}
	for i, m := range sent {
		if err := pub.WriteMedia(m.typ, uint32(i*10), m.payload); err != nil {
			t.Fatal(err)
		}
	}
	got := readMedia(t, player, len(sent))
	for i, m := range got {
		if m.Type != sent[i].typ || !bytes.Equal(m.Payload, sent[i].payload) {
			t.Fatalf("message %d: type %d % x, want type %d % x", i, m.Type, m.Payload, sent[i].typ, sent[i].payload)
		}
	}

	late := ts.dial(t, "live")
	if st, err := late.Play("key"); err != nil {
		t.Fatal(st, err)
	}
	var headers [][]byte
	for _, m := range sent {
		if m.header {
			headers = append(headers, m.payload)
		}
	}
	got = readMedia(t, late, len(headers))
	for i, m := range got {
		if !bytes.Equal(m.Payload, headers[i]) {
			t.Fatalf("late joiner's header %d: % x, want % x", i, m.Payload, headers[i])
		}
	}
}
