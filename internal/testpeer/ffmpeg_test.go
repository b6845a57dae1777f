package testpeer

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSourceArgs(t *testing.T) {
	tests := []struct {
		name    string
		src     Source
		want    []string // in order, as consecutive pairs
		notWant []string
	}{
		{"defaults", Source{}, []string{"testsrc2=size=320x240:rate=25", "-g 50"}, []string{"sine", "-t", "-c:a"}},
		{"audio", Source{Audio: true}, []string{"sine=frequency=440:sample_rate=44100", "-c:a aac"}, nil},
		{"small and short", Source{Width: 64, Height: 64, Rate: 5, Duration: 1500 * time.Millisecond},
			[]string{"testsrc2=size=64x64:rate=5", "-g 10", "-t 1.5"}, []string{"sine"}},
		{"gop", Source{GOP: 25}, []string{"-g 25"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(tt.src.Args(), " ")
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("%q lacks %q", got, w)
				}
			}
			for _, w := range tt.notWant {
				if slices.Contains(tt.src.Args(), w) || strings.Contains(got, w+"=") {
					t.Errorf("%q has %q", got, w)
				}
			}
		})
	}
	args := PublishArgs("rtmp://h/live/k", Source{}, "-rw_timeout", "1")
	if !slices.Equal(args[:len(FFmpegQuiet)], FFmpegQuiet) {
		t.Errorf("does not begin with %v: %v", FFmpegQuiet, args)
	}
	if tail := args[len(args)-5:]; !slices.Equal(tail, []string{"-rw_timeout", "1", "-f", "flv", "rtmp://h/live/k"}) {
		t.Errorf("ends with %v", tail)
	}
}

// TestPublishArgsMakeTheStream runs ffmpeg with the publisher's arguments
// into a file instead of a server, and checks with ffprobe that the stream
// is what Source describes.
func TestPublishArgsMakeTheStream(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.flv")
	src := Source{Width: 160, Height: 120, Rate: 10, Audio: true, Duration: time.Second}
	p := StartProcess(t, time.Minute, "ffmpeg", PublishArgs(out, src)...)
	if err := p.Wait(t, time.Minute); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, p.Stderr.String())
	}
	probe := StartProcess(t, time.Minute, "ffprobe", "-v", "error", "-count_frames",
		"-show_entries", "stream=codec_type,codec_name,width,height,nb_read_frames", "-of", "json", out)
	if err := probe.Wait(t, time.Minute); err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, probe.Stderr.String())
	}
	var got struct {
		Streams []struct {
			CodecType string `json:"codec_type"`
			CodecName string `json:"codec_name"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
			Frames    string `json:"nb_read_frames"`
		}
	}
	if err := json.Unmarshal([]byte(probe.Stdout.String()), &got); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, probe.Stdout.String())
	}
	var video, audio bool
	for _, s := range got.Streams {
		switch {
		case s.CodecType == "video" && s.CodecName == "h264" && s.Width == 160 && s.Height == 120 && s.Frames == "10":
			video = true
		case s.CodecType == "audio" && s.CodecName == "aac":
			audio = true
		}
	}
	if !video || !audio {
		t.Fatalf("want H.264 160x120 with 10 frames and AAC; ffprobe saw %+v", got.Streams)
	}
}
