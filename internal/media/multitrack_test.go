package media

import (
	"errors"
	"fmt"
	"testing"
)

// exVideo builds an Enhanced RTMP video header byte.
func exVideo(frameType, packetType byte) byte { return 0x80 | frameType<<4 | packetType }

// cat joins byte slices and strings.
func cat(parts ...any) []byte {
	var out []byte
	for _, p := range parts {
		switch v := p.(type) {
		case byte:
			out = append(out, v)
		case int:
			out = append(out, byte(v))
		case string:
			out = append(out, v...)
		case []byte:
			out = append(out, v...)
		default:
			panic(fmt.Sprintf("cat: %T", p))
		}
	}
	return out
}

// u24 is a 24-bit big-endian size.
func u24(n int) []byte { return []byte{byte(n >> 16), byte(n >> 8), byte(n)} }

func TestVideoTracks(t *testing.T) {
	tests := []struct {
		name   string
		input  []byte
		kind   Kind
		packet uint8
		multi  bool
		tracks string // "id:codec id:codec"
		nano   uint32
	}{
		{name: "classic avc header", input: []byte{0x17, 0x00, 0, 0, 0, 1}, kind: SequenceHeader, packet: 0, tracks: "0:avc1"},
		{name: "classic avc keyframe", input: []byte{0x17, 0x01, 0, 0, 0, 1}, kind: Keyframe, packet: 1, tracks: "0:avc1"},
		{name: "classic sorenson", input: []byte{0x22, 0xAA}, kind: Frame, packet: 1, tracks: "0:flv2"},
		{name: "v1 hevc sequence start", input: cat(exVideo(1, 0), "hvc1", 1, 2), kind: SequenceHeader, packet: 0, tracks: "0:hvc1"},
		{name: "v1 av1 keyframe", input: cat(exVideo(1, 1), "av01", 9), kind: Keyframe, packet: 1, tracks: "0:av01"},
		{name: "one track 1 sequence start", input: cat(exVideo(1, 6), 0x00, "avc1", 1, 0xAA), kind: SequenceHeader, packet: 0, multi: true, tracks: "1:avc1"},
		{name: "one track 1 keyframe is not the default track's",
			input: cat(exVideo(1, 6), 0x01, "avc1", 1, 0, 0, 0, 0xAA), kind: Frame, packet: 1, multi: true, tracks: "1:avc1"},
		{name: "one track 0 keyframe", input: cat(exVideo(1, 6), 0x03, "hvc1", 0, 0xAA), kind: Keyframe, packet: 3, multi: true, tracks: "0:hvc1"},
		{name: "one track 0 inter", input: cat(exVideo(2, 6), 0x01, "hvc1", 0, 0, 0, 0, 0xAA), kind: Frame, packet: 1, multi: true, tracks: "0:hvc1"},
		{name: "many tracks sequence start",
			input: cat(exVideo(1, 6), 0x10, "avc1", 0, u24(2), 0xA0, 0xA1, 2, u24(1), 0xB0),
			kind:  SequenceHeader, packet: 0, multi: true, tracks: "0:avc1 2:avc1"},
		{name: "many tracks keyframe with track 0",
			input: cat(exVideo(1, 6), 0x13, "avc1", 3, u24(1), 0xA0, 0, u24(0)),
			kind:  Keyframe, packet: 3, multi: true, tracks: "3:avc1 0:avc1"},
		{name: "many tracks many codecs",
			input: cat(exVideo(1, 6), 0x20, "avc1", 0, u24(1), 0xA0, "hvc1", 1, u24(2), 0xB0, 0xB1),
			kind:  SequenceHeader, packet: 0, multi: true, tracks: "0:avc1 1:hvc1"},
		{name: "modex nano offset then coded frames",
			input: cat(exVideo(1, 7), 2, 0x01, 0xE2, 0x40, 0x01, "hvc1", 0, 0, 0, 0xAA),
			kind:  Keyframe, packet: 1, tracks: "0:hvc1", nano: 123456},
		{name: "modex then multitrack sequence start",
			input: cat(exVideo(1, 7), 2, 0, 0, 7, 0x06, 0x00, "av01", 1, 0xAA),
			kind:  SequenceHeader, packet: 0, multi: true, tracks: "1:av01", nano: 7},
		{name: "modex 16-bit size",
			input: cat(exVideo(2, 7), 255, 0x01, 0x00, make([]byte, 257), 0x13, "vp09", 0xAA),
			kind:  Frame, packet: 3, tracks: "0:vp09"},
		{name: "multitrack metadata", input: cat(exVideo(1, 6), 0x04, "hvc1", 0, 0xAA), kind: Info, packet: 4, multi: true, tracks: "0:hvc1"},
		{name: "multitrack command frame", input: cat(exVideo(5, 6), 0x01, "hvc1", 0, 0), kind: Info, packet: 1, multi: true, tracks: "0:hvc1"},
		{name: "multitrack sequence end", input: cat(exVideo(1, 6), 0x02, "hvc1", 1), kind: SequenceEnd, packet: 2, multi: true, tracks: "1:hvc1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := VideoTracks(tt.input)
			if err != nil {
				t.Fatalf("VideoTracks(% x): %v", tt.input, err)
			}
			checkInfo(t, info, tt.kind, tt.packet, tt.multi, tt.tracks, tt.nano)
		})
	}
}

func TestAudioTracks(t *testing.T) {
	opusHead := cat("OpusHead", 1, 2, 0x38, 0x01, 0x80, 0xBB, 0, 0, 0, 0, 0)
	tests := []struct {
		name   string
		input  []byte
		kind   Kind
		packet uint8
		multi  bool
		tracks string
		nano   uint32
	}{
		{name: "classic aac header", input: []byte{0xAF, 0x00, 0x12, 0x10}, kind: SequenceHeader, packet: 0, tracks: "0:mp4a"},
		{name: "classic aac frame", input: []byte{0xAF, 0x01, 0x21}, kind: Frame, packet: 1, tracks: "0:mp4a"},
		{name: "classic mp3", input: []byte{0x2F, 0xFF}, kind: Frame, packet: 1, tracks: "0:.mp3"},
		{name: "classic speex", input: []byte{0xB6, 0xFF}, kind: Frame, packet: 1, tracks: "0:flv11"},
		{name: "opus sequence start", input: cat(0x90, "Opus", opusHead), kind: SequenceHeader, packet: 0, tracks: "0:Opus"},
		{name: "flac frame", input: cat(0x91, "fLaC", 0xFF, 0xF8), kind: Frame, packet: 1, tracks: "0:fLaC"},
		{name: "ac-3 frame", input: cat(0x91, "ac-3", 0x0B, 0x77), kind: Frame, packet: 1, tracks: "0:ac-3"},
		{name: "e-ac-3 sequence end", input: cat(0x92, "ec-3"), kind: SequenceEnd, packet: 2, tracks: "0:ec-3"},
		{name: "mp4a multichannel config", input: cat(0x94, "mp4a", 1, 2), kind: SequenceHeader, packet: 4, tracks: "0:mp4a"},
		{name: "mp3 frame", input: cat(0x91, ".mp3", 0xFF, 0xFB), kind: Frame, packet: 1, tracks: "0:.mp3"},
		{name: "one track 1 opus sequence start", input: cat(0x95, 0x00, "Opus", 1, opusHead), kind: SequenceHeader, packet: 0, multi: true, tracks: "1:Opus"},
		{name: "one track 1 opus frame", input: cat(0x95, 0x01, "Opus", 1, 0xFC), kind: Frame, packet: 1, multi: true, tracks: "1:Opus"},
		{name: "many tracks frames", input: cat(0x95, 0x11, "mp4a", 0, u24(1), 0x21, 1, u24(1), 0x22), kind: Frame, packet: 1, multi: true, tracks: "0:mp4a 1:mp4a"},
		{name: "many tracks many codecs sequence start",
			input: cat(0x95, 0x20, "mp4a", 0, u24(2), 0x12, 0x10, "Opus", 1, u24(len(opusHead)), opusHead),
			kind:  SequenceHeader, packet: 0, multi: true, tracks: "0:mp4a 1:Opus"},
		{name: "modex nano offset", input: cat(0x97, 2, 0, 1, 0, 0x01, "Opus", 0xFC), kind: Frame, packet: 1, tracks: "0:Opus", nano: 256},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := AudioTracks(tt.input)
			if err != nil {
				t.Fatalf("AudioTracks(% x): %v", tt.input, err)
			}
			checkInfo(t, info, tt.kind, tt.packet, tt.multi, tt.tracks, tt.nano)
		})
	}
}

func checkInfo(t *testing.T, info TrackInfo, kind Kind, packet uint8, multi bool, tracks string, nano uint32) {
	t.Helper()
	if info.Kind != kind || info.PacketType != packet || info.Multitrack != multi || info.NanoOffset != nano {
		t.Errorf("kind %v packet %d multitrack %v nano %d, want %v %d %v %d",
			info.Kind, info.PacketType, info.Multitrack, info.NanoOffset, kind, packet, multi, nano)
	}
	if got := formatTracks(info.Tracks); got != tracks {
		t.Errorf("tracks %q, want %q", got, tracks)
	}
}

func formatTracks(tracks []Track) string {
	s := ""
	for i, tr := range tracks {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%d:%s", tr.ID, tr.Codec)
	}
	return s
}

func TestTracksMalformed(t *testing.T) {
	tests := []struct {
		name  string
		video bool
		input []byte
		want  string
	}{
		{"empty video", true, nil, "empty video payload"},
		{"empty audio", false, nil, "empty audio payload"},
		{"fourcc truncated", true, cat(exVideo(1, 1), "hv"), "video FourCC truncated"},
		{"audio fourcc truncated", false, cat(0x91, "Op"), "audio FourCC truncated"},
		{"modex size missing", true, cat(exVideo(1, 7)), "video ModEx size missing"},
		{"modex 16-bit size missing", false, cat(0x97, 255, 0), "audio ModEx 16-bit size missing"},
		{"modex data truncated", true, cat(exVideo(1, 7), 4, 1, 2), "video ModEx data of 5 bytes truncated"},
		{"multitrack header missing", true, cat(exVideo(1, 6)), "video multitrack header missing"},
		{"multitrack inside multitrack", false, cat(0x95, 0x05, "Opus", 1), "audio multitrack packet type 5 inside multitrack"},
		{"modex inside multitrack", true, cat(exVideo(1, 6), 0x07, "avc1", 1), "video multitrack packet type 7 inside multitrack"},
		{"unknown multitrack type", true, cat(exVideo(1, 6), 0x30, "avc1", 1), "video multitrack type 3 unknown"},
		{"multitrack fourcc truncated", true, cat(exVideo(1, 6), 0x00, "av"), "video multitrack FourCC truncated"},
		{"track id missing", false, cat(0x95, 0x01, "Opus"), "audio track ID missing"},
		{"track size missing", true, cat(exVideo(1, 6), 0x10, "avc1", 0, 0), "video track size missing"},
		{"track truncated", true, cat(exVideo(1, 6), 0x10, "avc1", 4, u24(9), 1, 2), "video track 4 of 9 bytes truncated"},
		{"per-track fourcc truncated", false, cat(0x95, 0x21, "mp4a", 0, u24(0), "Op"), "audio track FourCC truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.video {
				_, err = VideoTracks(tt.input)
			} else {
				_, err = AudioTracks(tt.input)
			}
			if !errors.Is(err, ErrMalformed) || err.Error() != ErrMalformed.Error()+": "+tt.want {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// TestTracksManyTracksBound: a message naming more tracks than one byte can
// number is refused.
func TestTracksManyTracksBound(t *testing.T) {
	p := cat(exVideo(2, 6), 0x11, "avc1")
	for i := range maxTracksPerMessage + 1 {
		p = append(p, cat(byte(i), u24(0))...)
	}
	if _, err := VideoTracks(p); !errors.Is(err, ErrMalformed) {
		t.Fatalf("error %v, want the track bound", err)
	}
	if info, err := VideoTracks(p[:len(p)-4]); err != nil || len(info.Tracks) != maxTracksPerMessage {
		t.Fatalf("%d tracks: %v, %d tracks", maxTracksPerMessage, err, len(info.Tracks))
	}
}

// FuzzTracks checks the parsers on any payload: no panic; on success at
// least one track, and the Kind agrees with Video/Audio for payloads that
// are neither multitrack nor ModEx; on failure an ErrMalformed.
func FuzzTracks(f *testing.F) {
	seeds := [][]byte{
		{0x17, 0x00, 0, 0, 0, 1}, {0xAF, 0x00, 0x12, 0x10},
		cat(exVideo(1, 6), 0x10, "avc1", 0, u24(2), 0xA0, 0xA1, 2, u24(1), 0xB0),
		cat(exVideo(1, 6), 0x20, "avc1", 0, u24(1), 0xA0, "hvc1", 1, u24(2), 0xB0, 0xB1),
		cat(exVideo(1, 7), 2, 0x01, 0xE2, 0x40, 0x01, "hvc1", 0, 0, 0, 0xAA),
		cat(exVideo(2, 7), 255, 0x01, 0x00, make([]byte, 257), 0x13, "vp09", 0xAA),
		cat(0x95, 0x20, "mp4a", 0, u24(2), 0x12, 0x10, "Opus", 1, u24(1), 1),
		cat(0x97, 2, 0, 1, 0, 0x01, "Opus", 0xFC),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		for _, parse := range []struct {
			fn      func([]byte) (TrackInfo, error)
			kind    func([]byte) Kind
			isEx    bool
			exTypes byte
		}{
			{VideoTracks, Video, len(p) > 0 && p[0]&0x80 != 0, exVideoMultitrack},
			{AudioTracks, Audio, len(p) > 0 && p[0]>>4 == audioFormatExHdr, exAudioMultitrack},
		} {
			info, err := parse.fn(p)
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("error %v does not wrap ErrMalformed", err)
				}
				continue
			}
			if len(info.Tracks) == 0 || len(info.Tracks) > maxTracksPerMessage {
				t.Fatalf("% x: %d tracks", p, len(info.Tracks))
			}
			plain := !parse.isEx || (p[0]&0x0F != parse.exTypes && p[0]&0x0F != exPacketModEx)
			if plain && info.Kind != parse.kind(p) && parse.exTypes == exVideoMultitrack {
				t.Fatalf("% x: kind %v, Video says %v", p, info.Kind, parse.kind(p))
			}
			// A keyframe carries the default track, and its frame type says
			// key, or says nothing either way (disposable, generated) and
			// the bitstream tells; an inter frame is never one.
			if !plain && info.Kind == Keyframe && (!info.carries(DefaultTrack) || (p[0]>>4)&0x07 == frameTypeInter) {
				t.Fatalf("% x: keyframe without the default track's keyframe", p)
			}
		}
	})
}

func TestKindOfMultitrack(t *testing.T) {
	tests := []struct {
		name  string
		video bool
		input []byte
		want  Kind
	}{
		{"classic keyframe", true, []byte{0x17, 0x01, 0, 0, 0, 1}, Keyframe},
		{"v1 keyframe", true, cat(exVideo(1, 3), "hvc1", 1), Keyframe},
		{"track 1 keyframe", true, cat(exVideo(1, 6), 0x03, "avc1", 1, 0xAA), Frame},
		{"track 0 keyframe", true, cat(exVideo(1, 6), 0x03, "avc1", 0, 0xAA), Keyframe},
		{"modex keyframe", true, cat(exVideo(1, 7), 0, 9, 0x03, "vp09", 0xAA), Keyframe},
		{"malformed multitrack", true, cat(exVideo(1, 6), 0x03, "av"), Info},
		{"classic aac header", false, []byte{0xAF, 0x00, 0x12, 0x10}, SequenceHeader},
		{"multitrack opus header", false, cat(0x95, 0x00, "Opus", 1, 0xAA), SequenceHeader},
		{"modex opus header", false, cat(0x97, 0, 9, 0x00, "Opus", 0xAA), SequenceHeader},
		{"multichannel config", false, cat(0x94, "Opus", 0xAA), SequenceHeader},
		{"malformed audio", false, cat(0x95, 0x01, "Op"), Info},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AudioKind(tt.input)
			if tt.video {
				got = VideoKind(tt.input)
			}
			if got != tt.want {
				t.Fatalf("kind of % x = %v, want %v", tt.input, got, tt.want)
			}
		})
	}
}

// TestMultitrackBitstreamKeyframes classifies real encoder output carried
// in Enhanced RTMP v2 messages whose frame type is not set: a keyframe is
// recognised from the default track's bitstream, and only from its.
func TestMultitrackBitstreamKeyframes(t *testing.T) {
	u24 := func(n int) []byte { return []byte{byte(n >> 16), byte(n >> 8), byte(n)} }
	for _, s := range loadSamples(t) {
		var cto []byte // composition time offset of CodedFrames for AVC and HEVC
		if s.FourCC == "avc1" || s.FourCC == "hvc1" {
			cto = []byte{0, 0, 0x50}
		}
		sawKey, sawInter := false, false
		for i := range s.Units {
			frame := s.Frame(i)
			body := cat(cto, frame)
			other := cat(cto, s.Frame((i+1)%len(s.Units)))
			want := Frame
			if s.Key[i] {
				want, sawKey = Keyframe, true
			} else {
				sawInter = true
			}
			layouts := []struct {
				name string
				p    []byte
				want Kind
			}{
				{"one track 0", cat(exVideo(0, 6), 0x01, s.FourCC, 0, body), want},
				{"one track 1", cat(exVideo(0, 6), 0x01, s.FourCC, 1, body), Frame},
				{"many tracks, 0 second", cat(exVideo(0, 6), 0x11, s.FourCC,
					1, u24(len(other)), other, 0, u24(len(body)), body), want},
				{"many codecs", cat(exVideo(0, 6), 0x21,
					"vp08", 1, u24(3), 0xAA, 0xBB, 0xCC, s.FourCC, 0, u24(len(body)), body), want},
				{"modex", cat(exVideo(0, 7), 0, 9, 0x01, s.FourCC, body), want},
				{"frame type 3", cat(exVideo(3, 6), 0x01, s.FourCC, 0, body), want},
				{"inter frame type trusted", cat(exVideo(2, 6), 0x01, s.FourCC, 0, body), Frame},
			}
			for _, l := range layouts {
				if got := VideoKind(l.p); got != l.want {
					t.Errorf("%s frame %d, %s: kind %v, want %v", s.Name, i, l.name, got, l.want)
				}
			}
		}
		if !sawKey || !sawInter {
			t.Errorf("%s: sample lacks keyframes (%v) or inter frames (%v)", s.Name, sawKey, sawInter)
		}
	}
}
