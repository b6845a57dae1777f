package media

import "testing"

func TestVideo(t *testing.T) {
	tests := []struct {
		name  string
		input []byte
		want  Kind
	}{
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
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Video(tt.input); got != tt.want {
				t.Fatalf("Video(% x) = %v, want %v", tt.input, got, tt.want)
			}
		})
	}
}

func TestAudio(t *testing.T) {
	tests := []struct {
		name  string
		input []byte
		want  Kind
	}{
		{"empty", nil, Info},
		{"aac sequence header", []byte{0xAF, 0x00, 0x12, 0x10}, SequenceHeader},
		{"aac raw", []byte{0xAF, 0x01, 0x21}, Frame},
		{"mp3", []byte{0x2F, 0xFF}, Frame},
		{"enhanced opus sequence start", append([]byte{0x90}, "Opus"...), SequenceHeader},
		{"enhanced opus frame", append([]byte{0x91}, "Opus"...), Frame},
		{"enhanced sequence end", append([]byte{0x92}, "Opus"...), SequenceEnd},
		{"enhanced multitrack sequence start", append([]byte{0x95, 0x00}, "Opus"...), SequenceHeader},
	}
	for _, tt := range tests {
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

func FuzzClassify(f *testing.F) {
	f.Add([]byte{0x17, 0x00, 0, 0, 0, 1})
	f.Add(append([]byte{0x96, 0x01}, "av01"...))
	f.Add([]byte{0xAF, 0x00, 0x12, 0x10})
	f.Fuzz(func(t *testing.T, p []byte) {
		_ = Video(p)
		_ = Audio(p)
		_ = VideoFourCC(p)
	})
}
