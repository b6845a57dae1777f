package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/media"
)

func TestStampRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		typ   uint8
		frame []byte
		flags byte
		seq   uint64
		sent  int64
	}{
		{"keyframe", typeVideo, videoFrame(1000, true), stampMeasured, 1, 12345},
		{"inter frame", typeVideo, videoFrame(minVideoFrame, false), 0, 1 << 40, 1 << 50},
		{"audio", typeAudio, audioFrame(minAudioFrame), stampMeasured, 7, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := audioStampAt
			if tt.typ == typeVideo {
				at = videoStampAt
			}
			putStamp(tt.frame[at:], tt.flags, tt.seq, tt.sent)
			flags, seq, sent, ok := readStamp(tt.typ, tt.frame)
			if !ok || flags != tt.flags || seq != tt.seq || sent != tt.sent {
				t.Errorf("readStamp = %d, %d, %d, %v; want %d, %d, %d, true", flags, seq, sent, ok, tt.flags, tt.seq, tt.sent)
			}
		})
	}
}

func TestReadStampRejects(t *testing.T) {
	tests := []struct {
		name string
		typ  uint8
		p    []byte
	}{
		{"AVC sequence header", typeVideo, avcSequenceHeader()},
		{"AAC sequence header", typeAudio, aacSequenceHeader()},
		{"empty", typeVideo, nil},
		{"unstamped frame", typeVideo, videoFrame(100, true)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, _, ok := readStamp(tt.typ, tt.p); ok {
				t.Errorf("readStamp found a stamp in % x", tt.p)
			}
		})
	}
}

func TestFramesClassify(t *testing.T) {
	tests := []struct {
		name  string
		audio bool
		p     []byte
		want  media.Kind
	}{
		{"keyframe", false, videoFrame(500, true), media.Keyframe},
		{"inter frame", false, videoFrame(500, false), media.Frame},
		{"AVC sequence header", false, avcSequenceHeader(), media.SequenceHeader},
		{"AAC sequence header", true, aacSequenceHeader(), media.SequenceHeader},
		{"AAC frame", true, audioFrame(300), media.Frame},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := media.Video(tt.p)
			if tt.audio {
				got = media.Audio(tt.p)
			}
			if got != tt.want {
				t.Errorf("kind = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestVideoFrameNALLength(t *testing.T) {
	p := videoFrame(777, false)
	if n := int(p[5])<<24 | int(p[6])<<16 | int(p[7])<<8 | int(p[8]); n != len(p)-9 {
		t.Errorf("NAL length %d, want %d", n, len(p)-9)
	}
}

func TestParameterSets(t *testing.T) {
	// Expected bytes worked out by hand from the field values in
	// spsBaseline720p and ppsBaseline.
	wantSPS := []byte{0x67, 0x42, 0xC0, 0x1F, 0xDA, 0x01, 0x40, 0x16, 0xE4}
	wantPPS := []byte{0x68, 0xCE, 0x3C, 0x80}
	if got := spsBaseline720p(); !bytes.Equal(got, wantSPS) {
		t.Errorf("SPS = % X, want % X", got, wantSPS)
	}
	if got := ppsBaseline(); !bytes.Equal(got, wantPPS) {
		t.Errorf("PPS = % X, want % X", got, wantPPS)
	}
	hdr := avcSequenceHeader()
	if hdr[5] != 1 || hdr[6] != 0x42 || hdr[9] != 0xFF || hdr[10] != 0xE1 {
		t.Errorf("decoder configuration record starts % X", hdr[5:11])
	}
	if got := aacSequenceHeader(); !bytes.Equal(got, []byte{0xAF, 0, 0x12, 0x10}) {
		t.Errorf("AAC sequence header = % X", got)
	}
}

func TestEmulationPrevention(t *testing.T) {
	w := &bitWriter{b: []byte{0, 0, 1, 0, 0, 0}, nbit: 48}
	got := w.rbsp()
	want := []byte{0, 0, 3, 1, 0, 0, 3, 0, 0x80}
	if !bytes.Equal(got, want) {
		t.Errorf("rbsp = % X, want % X", got, want)
	}
}

func TestStreamShapeBitrate(t *testing.T) {
	tests := []struct {
		bitrate int
		fps     float64
		gop     time.Duration
	}{
		{4_000_000, 30, 2 * time.Second},
		{2_000_000, 25, time.Second},
		{500_000, 60, 4 * time.Second},
	}
	for _, tt := range tests {
		s := newStreamShape(tt.bitrate, tt.fps, tt.gop)
		gopSeconds := float64(s.framesPerGOP) / tt.fps
		videoBytes := float64(s.keyframeBytes + (s.framesPerGOP-1)*s.interBytes)
		got := (videoBytes/gopSeconds + float64(s.audioBytes)*s.audioPerSec) * 8
		if got < 0.98*float64(tt.bitrate) || got > 1.02*float64(tt.bitrate) {
			t.Errorf("%d bit/s at %v fps: shape gives %.0f bit/s", tt.bitrate, tt.fps, got)
		}
	}
}
