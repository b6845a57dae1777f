package media

import "testing"

type kindTest struct {
	name  string
	input []byte
	want  Kind
}

var videoTests = []kindTest{
	{"empty", nil, Info},
	{"avc sequence header", []byte{0x17, 0x00, 0, 0, 0, 1}, SequenceHeader},
	{"avc keyframe", []byte{0x17, 0x01, 0, 0, 0}, Keyframe},
	{"avc inter frame", []byte{0x27, 0x01, 0, 0, 0}, Frame},
	{"avc end of sequence", []byte{0x17, 0x02, 0, 0, 0}, SequenceEnd},
	{"avc truncated", []byte{0x17}, Info},
	{"flv hevc sequence header", []byte{0x1C, 0x00}, SequenceHeader},
	{"sorenson keyframe", []byte{0x12, 0xAA}, Keyframe},
	{"vp6 inter", []byte{0x24, 0xAA}, Frame},
	{"video info frame", []byte{0x57, 0x00}, Info},
	{"enhanced hevc sequence start", append([]byte{0x90}, "hvc1"...), SequenceHeader},
	{"enhanced hevc keyframe", append([]byte{0x91}, "hvc1\x00\x00\x00"...), Keyframe},
	{"enhanced hevc keyframe X", append([]byte{0x93}, "hvc1"...), Keyframe},
	{"enhanced av1 inter", append([]byte{0xA1}, "av01"...), Frame},
	{"enhanced vp9 sequence end", append([]byte{0x92}, "vp09"...), SequenceEnd},
	{"enhanced metadata", append([]byte{0x94}, "hvc1"...), Info},
	{"enhanced command frame", append([]byte{0xD1}, "av01"...), Info},
	{"enhanced mpeg2ts sequence start", append([]byte{0x95}, "av01"...), SequenceHeader},
	{"enhanced multitrack sequence start", append([]byte{0x96, 0x00}, "hvc1"...), SequenceHeader},
	{"enhanced multitrack keyframe", append([]byte{0x96, 0x01}, "hvc1"...), Keyframe},
}

func TestVideo(t *testing.T) {
	for _, tt := range videoTests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Video(tt.input); got != tt.want {
				t.Fatalf("Video(% x) = %v, want %v", tt.input, got, tt.want)
			}
		})
	}
}

var audioTests = []kindTest{
	{"empty", nil, Info},
	{"aac sequence header", []byte{0xAF, 0x00, 0x12, 0x10}, SequenceHeader},
	{"aac raw", []byte{0xAF, 0x01, 0x21}, Frame},
	{"mp3", []byte{0x2F, 0xFF}, Frame},
	{"enhanced opus sequence start", append([]byte{0x90}, "Opus"...), SequenceHeader},
	{"enhanced opus frame", append([]byte{0x91}, "Opus"...), Frame},
	{"enhanced sequence end", append([]byte{0x92}, "Opus"...), SequenceEnd},
	{"enhanced multitrack sequence start", append([]byte{0x95, 0x00}, "Opus"...), SequenceHeader},
}

func TestAudio(t *testing.T) {
	for _, tt := range audioTests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Audio(tt.input); got != tt.want {
				t.Fatalf("Audio(% x) = %v, want %v", tt.input, got, tt.want)
			}
		})
	}
}

func TestVideoFourCC(t *testing.T) {
	tests := []struct {
		name  string
		input []byte
		want  string
	}{
		{"classic", []byte{0x17, 0x01, 0, 0, 0}, ""},
		{"hevc", append([]byte{0x91}, "hvc1"...), "hvc1"},
		{"multitrack av1", append([]byte{0x96, 0x01}, "av01"...), "av01"},
		{"short", []byte{0x91, 'h'}, ""},
	}
	for _, tt := range tests {
		if got := VideoFourCC(tt.input); got != tt.want {
			t.Errorf("%s: got %q want %q", tt.name, got, tt.want)
		}
	}
}

// FuzzClassify checks Video, Audio and VideoFourCC against reference
// classifiers written apart from them, straight from the FLV and Enhanced
// RTMP tag header layouts below. Only the bitstream check (RandomAccess,
// tested on its own) is shared.
func FuzzClassify(f *testing.F) {
	f.Add([]byte{0x17, 0x00, 0, 0, 0, 1})
	f.Add(append([]byte{0x96, 0x01}, "av01"...))
	f.Add([]byte{0xAF, 0x00, 0x12, 0x10})
	f.Add([]byte{0x37, 0x01, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88})                      // disposable inter frame type, IDR bitstream
	f.Add([]byte{0x27, 0x01, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88})                      // inter frame type wins over an IDR bitstream
	f.Add(append(append([]byte{0x81}, "avc1"...), 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88)) // no frame type, IDR
	f.Add(append(append([]byte{0x83}, "hvc1"...), 0, 0, 0, 3, 0x26, 0x01, 0xAF))    // CodedFramesX, IDR_W_RADL
	for _, tt := range videoTests {
		f.Add(tt.input)
	}
	for _, tt := range audioTests {
		f.Add(tt.input)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		if got, want := Video(p), refVideo(p); got != want {
			t.Errorf("Video(% x) = %v, want %v", p, got, want)
		}
		if got, want := Audio(p), refAudio(p); got != want {
			t.Errorf("Audio(% x) = %v, want %v", p, got, want)
		}
		if got, want := VideoFourCC(p), refVideoFourCC(p); got != want {
			t.Errorf("VideoFourCC(% x) = %q, want %q", p, got, want)
		}
	})
}

// videoTag is the first bytes of an FLV video tag body.
//
// Classic:  FrameType(4) CodecID(4) [AVCPacketType(8) CompositionTime(24)] data
// Enhanced: IsExHeader(1)=1 FrameType(3) PacketType(4) FourCC(32) [...] data,
// or with PacketType 6 (Multitrack): AvMultitrackType(4) PacketType(4) FourCC(32) ...
type videoTag struct {
	enhanced   bool
	frameType  int    // 1 key, 2 inter, 3 disposable inter, 4 generated key, 5 info/command
	codec      int    // classic CodecID
	packetType int    // classic AVCPacketType, or the Enhanced PacketType (-1: missing)
	inner      int    // Enhanced multitrack: the packet type of the tracks (-1: missing)
	fourCC     string // Enhanced: "" when the payload is too short
	data       []byte // what follows the header, for the bitstream check (nil: none)
}

func parseVideoTag(p []byte) videoTag {
	v := videoTag{enhanced: p[0] >= 0x80, packetType: -1, inner: -1}
	if v.enhanced {
		v.frameType = int(p[0]>>4) - 8
		v.packetType = int(p[0] % 16)
		if v.packetType == 6 {
			if len(p) >= 2 {
				v.inner = int(p[1] % 16)
			}
			if len(p) >= 6 {
				v.fourCC = string(p[2:6])
			}
			return v
		}
		if len(p) >= 5 {
			v.fourCC = string(p[1:5])
		}
		switch {
		case v.packetType == 1 && (v.fourCC == "avc1" || v.fourCC == "hvc1"):
			if len(p) >= 8 {
				v.data = p[8:] // after the SI24 composition time
			}
		case v.packetType == 1 || v.packetType == 3:
			if len(p) >= 5 {
				v.data = p[5:]
			}
		}
		return v
	}
	v.frameType = int(p[0] >> 4)
	v.codec = int(p[0] % 16)
	if len(p) >= 2 {
		v.packetType = int(p[1])
	}
	if len(p) >= 5 && v.packetType == 1 {
		v.data = p[5:]
	}
	return v
}

// refVideo is the reference for Video.
func refVideo(p []byte) Kind {
	if len(p) == 0 {
		return Info
	}
	v := parseVideoTag(p)
	if v.frameType == 5 {
		return Info
	}
	bitstreamFourCC := ""
	if v.enhanced {
		switch {
		case v.packetType == 0, v.packetType == 5, v.packetType == 6 && v.inner == 0:
			return SequenceHeader // SequenceStart, MPEG2TSSequenceStart, multitrack SequenceStart
		case v.packetType == 2:
			return SequenceEnd
		case v.packetType == 4:
			return Info // Metadata
		}
		bitstreamFourCC = v.fourCC
	} else if v.codec == 7 || v.codec == 12 { // AVC, and HEVC in classic tags
		switch v.packetType {
		case -1:
			return Info
		case 0:
			return SequenceHeader
		case 2:
			return SequenceEnd
		}
		bitstreamFourCC = map[int]string{7: "avc1", 12: "hvc1"}[v.codec]
	}
	switch {
	case v.frameType == 1:
		return Keyframe
	case v.frameType == 2:
		return Frame
	case v.data != nil && RandomAccess(bitstreamFourCC, v.data):
		return Keyframe
	}
	return Frame
}

// refAudio is the reference for Audio. Classic: SoundFormat(4) rate(2)
// size(1) type(1) [AACPacketType(8)]; Enhanced (SoundFormat 9): the low
// nibble is the AudioPacketType, and Multitrack (5) is followed by
// AudioMultitrackType(4) AudioPacketType(4).
func refAudio(p []byte) Kind {
	if len(p) == 0 {
		return Info
	}
	soundFormat, low := p[0]>>4, p[0]&0x0F
	second := -1
	if len(p) >= 2 {
		second = int(p[1])
	}
	switch {
	case soundFormat == 10 && second == 0:
		return SequenceHeader // AAC AudioSpecificConfig
	case soundFormat == 9 && low == 0:
		return SequenceHeader
	case soundFormat == 9 && low == 2:
		return SequenceEnd
	case soundFormat == 9 && low == 5 && second >= 0 && second%16 == 0:
		return SequenceHeader
	}
	return Frame
}

// refVideoFourCC is the reference for VideoFourCC.
func refVideoFourCC(p []byte) string {
	if len(p) == 0 || p[0] < 0x80 {
		return ""
	}
	return parseVideoTag(p).fourCC
}
