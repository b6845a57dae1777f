package testpeer

import (
	"fmt"
	"strconv"
	"time"
)

// Source is the stream an ffmpeg publisher generates: lavfi's testsrc2
// encoded as H.264 (and a sine tone as AAC), sent in real time.
type Source struct {
	Width, Height int // 320x240 when zero
	Rate          int // frames per second; 25 when zero
	// GOP is the number of frames from one keyframe to the next; two
	// seconds' worth when zero.
	GOP   int
	Audio bool // add an AAC track
	// Duration ends the stream after that long (-t); zero sends until
	// the process is stopped.
	Duration time.Duration
}

// Args returns ffmpeg's input and encoder arguments for the source, to be
// followed by any further options, the output format and the URL.
func (s Source) Args() []string {
	w, h, rate := s.Width, s.Height, s.Rate
	if w == 0 || h == 0 {
		w, h = 320, 240
	}
	if rate == 0 {
		rate = 25
	}
	gop := s.GOP
	if gop == 0 {
		gop = 2 * rate
	}
	args := []string{"-re", "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", w, h, rate)}
	if s.Audio {
		args = append(args, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100")
	}
	args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
		"-g", strconv.Itoa(gop), "-pix_fmt", "yuv420p")
	if s.Audio {
		args = append(args, "-c:a", "aac", "-b:a", "64k")
	}
	if s.Duration > 0 {
		args = append(args, "-t", strconv.FormatFloat(s.Duration.Seconds(), 'f', -1, 64))
	}
	return args
}

// FFmpegQuiet is how every ffmpeg run by tests begins: errors only on
// stderr, no prompt on stdin.
var FFmpegQuiet = []string{"-hide_banner", "-nostdin", "-loglevel", "error"}

// PublishArgs returns the arguments of an ffmpeg that publishes src to url
// as FLV (RTMP), with extra options placed after the encoder's.
func PublishArgs(url string, src Source, extra ...string) []string {
	args := append([]string{}, FFmpegQuiet...)
	args = append(args, src.Args()...)
	args = append(args, extra...)
	return append(args, "-f", "flv", url)
}
