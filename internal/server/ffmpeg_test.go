package server

// End-to-end tests with real peers: ffmpeg and ffprobe publishing and
// playing, rtmpdump (librtmp) playing.

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/access"
	"github.com/rtmp-server/rtmp-server/internal/media"
	"github.com/rtmp-server/rtmp-server/internal/message"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// peerLimit bounds how long a peer program of a test may run; they are
// killed when the test ends in any case.
const peerLimit = 10 * time.Minute

func (ts *testServer) url(channel, key string) string {
	return fmt.Sprintf("rtmp://%s/%s/%s", ts.addr, channel, key)
}

// publishFFmpeg publishes a generated H.264 + AAC stream (2 s GOPs) until stopped.
func publishFFmpeg(t testing.TB, url string, extra ...string) *testpeer.Process {
	return testpeer.StartProcess(t, peerLimit, "ffmpeg", testpeer.PublishArgs(url, testpeer.Source{Audio: true}, extra...)...)
}

func (ts *testServer) waitPublishing(t testing.TB, channel string, p *testpeer.Process) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for ts.Hub().Lookup(channel) == nil {
		select {
		case <-p.Done():
			t.Fatalf("publisher exited: %v\n%s", p.Err(), p.Stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no publication on %q; publisher stderr:\n%s", channel, p.Stderr.String())
		}
	}
}

type probeStream struct {
	CodecType string `json:"codec_type"`
	CodecName string `json:"codec_name"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
}

func ffprobeStreams(t testing.TB, url string) []probeStream {
	t.Helper()
	p := testpeer.StartProcess(t, peerLimit, "ffprobe", "-v", "error", "-rw_timeout", "10000000", "-show_entries", "stream=codec_type,codec_name,width,height", "-of", "json", url)
	if err := p.Wait(t, 30*time.Second); err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, p.Stderr.String())
	}
	var out struct{ Streams []probeStream }
	if err := json.Unmarshal([]byte(p.Stdout.String()), &out); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, p.Stdout.String())
	}
	return out.Streams
}

func checkH264AAC(t testing.TB, streams []probeStream) {
	t.Helper()
	var video, audio bool
	for _, s := range streams {
		switch {
		case s.CodecType == "video" && s.CodecName == "h264" && s.Width == 320 && s.Height == 240:
			video = true
		case s.CodecType == "audio" && s.CodecName == "aac":
			audio = true
		}
	}
	if !video || !audio {
		t.Fatalf("streams %+v, want h264 320x240 and aac", streams)
	}
}

// decodeFrames plays url with ffmpeg, decoding n video frames, and returns
// the framecrc lines. Any decoder complaint fails the test.
func decodeFrames(t testing.TB, url string, n int) []string {
	t.Helper()
	p := testpeer.StartProcess(t, peerLimit, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-rw_timeout", "10000000",
		"-i", url, "-map", "0:v", "-frames:v", fmt.Sprint(n), "-f", "framecrc", "-")
	if err := p.Wait(t, 40*time.Second); err != nil {
		t.Fatalf("ffmpeg player: %v\n%s", err, p.Stderr.String())
	}
	if s := strings.TrimSpace(p.Stderr.String()); s != "" {
		t.Fatalf("decoder reported errors:\n%s", s)
	}
	var frames []string
	for _, l := range strings.Split(p.Stdout.String(), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			frames = append(frames, l)
		}
	}
	if len(frames) < n {
		t.Fatalf("decoded %d frames, want %d", len(frames), n)
	}
	return frames
}

func TestFFmpegPublishAndPlay(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	pub := publishFFmpeg(t, ts.url("live", "secret1"))
	ts.waitPublishing(t, "live", pub)
	checkH264AAC(t, ffprobeStreams(t, ts.url("live", "secret1")))
	decodeFrames(t, ts.url("live", "secret1"), 50)
}

// TestFFmpegMidStreamJoin joins while the publisher is in the middle of a
// GOP: the player must start on the cached keyframe and decode cleanly
// from its very first frame.
func TestFFmpegMidStreamJoin(t *testing.T) {
	t.Parallel()
	for _, gop := range []int{256, 0} {
		t.Run(fmt.Sprintf("GOP_CACHE_SIZE_MB=%d", gop), func(t *testing.T) {
			ts := startServer(t, func(c *Options) { c.GOPCacheBytes = int64(gop) << 20 })
			pub := publishFFmpeg(t, ts.url("live", "k"))
			ts.waitPublishing(t, "live", pub)

			// Watch the stream until it is well into a GOP.
			watch := ts.dial(t, "live")
			if st, err := watch.Play("k"); err != nil {
				t.Fatal(st, err)
			}
			sawKey, after := false, 0
			for after < 15 {
				m, err := watch.ReadMessage()
				if err != nil {
					t.Fatal(err)
				}
				if m.Type != message.TypeVideo {
					continue
				}
				switch media.Video(m.Payload) {
				case media.Keyframe:
					sawKey, after = true, 0
				case media.Frame:
					if sawKey {
						after++
					}
				}
			}
			probe := testpeer.StartProcess(t, peerLimit, "ffprobe", "-v", "error", "-rw_timeout", "10000000", "-select_streams", "v",
				"-show_entries", "frame=key_frame,pict_type", "-read_intervals", "%+#10", "-of", "csv=p=0", ts.url("live", "k"))
			if err := probe.Wait(t, 30*time.Second); err != nil {
				t.Fatalf("ffprobe: %v\n%s", err, probe.Stderr.String())
			}
			if s := strings.TrimSpace(probe.Stderr.String()); s != "" {
				t.Fatalf("decoder reported errors:\n%s", s)
			}
			lines := strings.Fields(probe.Stdout.String())
			if len(lines) == 0 || !strings.HasPrefix(lines[0], "1,I") {
				t.Fatalf("first frames %v, want to start on a keyframe (1,I)", lines)
			}
		})
	}
}

func TestFFmpegWaitingPlayerStarts(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	player := testpeer.StartProcess(t, peerLimit, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-rw_timeout", "30000000",
		"-i", ts.url("live", "k"), "-map", "0:v", "-frames:v", "25", "-f", "framecrc", "-")
	waitFor(t, "player waiting", 15*time.Second, func() bool { return ts.Hub().Stats().Players == 1 })
	if ts.Hub().Lookup("live") != nil {
		t.Fatal("publication before the publisher started")
	}
	publishFFmpeg(t, ts.url("live", "k"))
	if err := player.Wait(t, 40*time.Second); err != nil {
		t.Fatalf("waiting player: %v\n%s", err, player.Stderr.String())
	}
	if n := strings.Count(player.Stdout.String(), "\n0,"); n < 25 {
		t.Fatalf("waiting player decoded %d frames", n)
	}
}

// ffmpegRefused runs an ffmpeg client that the server must refuse and
// checks that its error output carries the server's description.
func ffmpegRefused(t testing.TB, want string, args ...string) {
	t.Helper()
	p := testpeer.StartProcess(t, peerLimit, "ffmpeg", append([]string{"-hide_banner", "-nostdin", "-loglevel", "error"}, args...)...)
	err := p.Wait(t, 30*time.Second)
	if err == nil {
		t.Fatalf("ffmpeg %v succeeded, want it refused with %q", args, want)
	}
	if !strings.Contains(p.Stderr.String(), want) {
		t.Fatalf("ffmpeg %v stderr lacks %q:\n%s", args, want, p.Stderr.String())
	}
}

func TestFFmpegRefusals(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *Options) {
		c.MaxIPConnections = 3
		c.PlayWhitelist = access.MustParseList("127.0.0.1")
	})
	pub := publishFFmpeg(t, ts.url("live", "k"))
	ts.waitPublishing(t, "live", pub)
	gen := append(testpeer.Source{Width: 64, Height: 64, Rate: 5, Duration: 2 * time.Second}.Args(), "-f", "flv")

	t.Run("wrong key", func(t *testing.T) {
		ffmpegRefused(t, "Invalid stream key provided", "-rw_timeout", "10000000", "-i", ts.url("live", "wrong"), "-f", "null", "-")
	})
	t.Run("bad channel", func(t *testing.T) {
		ffmpegRefused(t, "Invalid channel.", append(gen, ts.url("bad.channel", "k"))...)
	})
	t.Run("duplicate publisher", func(t *testing.T) {
		ffmpegRefused(t, "Stream already publishing", append(gen, ts.url("live", "k2"))...)
	})
	t.Run("play whitelist", func(t *testing.T) {
		cfg := ts.Options()
		cfg.PlayWhitelist = access.MustParseList("10.0.0.0/8")
		mustSetOptions(t, ts.Server, cfg)
		defer func() {
			cfg.PlayWhitelist = access.MustParseList("127.0.0.1")
			mustSetOptions(t, ts.Server, cfg)
		}()
		ffmpegRefused(t, "Your net address is not whitelisted for playing", "-rw_timeout", "10000000", "-i", ts.url("live", "k"), "-f", "null", "-")
	})
	t.Run("per-IP limit", func(t *testing.T) {
		// The publisher holds one slot; two idle connections take the rest.
		for i := 0; i < 2; i++ {
			c, err := net.Dial("tcp", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
		}
		waitFor(t, "connections counted", 5*time.Second, func() bool {
			return ts.limiter.Count(ts.Hub().Lookup("live").ClientAddr()) == 3
		})
		ffmpegRefused(t, "Too many connections", "-rw_timeout", "10000000", "-i", ts.url("live", "k"), "-f", "null", "-")
	})
}

// cutProxy forwards TCP to target until cut, after which the client side
// is closed and the server side is left open and silent: what the server
// sees when an encoder's network dies.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	cut    bool
}

func newCutProxy(t testing.TB, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go p.pipe(s, c)
			go p.pipe(c, s)
		}
	}()
	return p
}

func (p *cutProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if err != nil || cut {
			return
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

// Cut stops forwarding and closes the client sides only.
func (p *cutProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for i := 0; i < len(p.conns); i += 2 {
		p.conns[i].Close()
	}
}

func (p *cutProxy) url(channel, key string) string {
	return fmt.Sprintf("rtmp://%s/%s/%s", p.ln.Addr(), channel, key)
}

func TestFFmpegReconnectAfterCut(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	proxy := newCutProxy(t, ts.addr)
	first := publishFFmpeg(t, proxy.url("live", "k"))
	ts.waitPublishing(t, "live", first)
	oldSession := ts.Hub().Lookup("live").SessionID()

	proxy.Cut()
	cutAt := time.Now()
	first.Stop()
	// The encoder comes back on a new connection with the same key.
	second := publishFFmpeg(t, ts.url("live", "k"))
	waitFor(t, "reconnected publisher", 10*time.Second, func() bool {
		p := ts.Hub().Lookup("live")
		return p != nil && p.SessionID() != oldSession
	})
	t.Logf("publishing again %v after the cut", time.Since(cutAt).Round(10*time.Millisecond))
	select {
	case <-second.Done():
		t.Fatalf("second publisher exited: %v\n%s", second.Err(), second.Stderr.String())
	default:
	}
	decodeFrames(t, ts.url("live", "k"), 25)
}

func TestRtmpdumpPlays(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	pub := publishFFmpeg(t, ts.url("live", "k"))
	ts.waitPublishing(t, "live", pub)
	out := filepath.Join(t.TempDir(), "dump.flv")
	dump := testpeer.StartProcess(t, peerLimit, "rtmpdump", "--live", "-q", "-r", ts.url("live", "k"), "-o", out)
	waitFor(t, "rtmpdump output", 30*time.Second, func() bool {
		fi, err := os.Stat(out)
		return err == nil && fi.Size() > 150<<10
	})
	dump.Stop()
	checkH264AAC(t, ffprobeStreams(t, out))
	probe := testpeer.StartProcess(t, peerLimit, "ffprobe", "-v", "error", "-count_frames", "-select_streams", "v", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", out)
	if err := probe.Wait(t, 30*time.Second); err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, probe.Stderr.String())
	}
	var n int
	if _, err := fmt.Sscan(strings.TrimSpace(probe.Stdout.String()), &n); err != nil {
		t.Fatalf("ffprobe frame count %q: %v", probe.Stdout.String(), err)
	}
	if n < 25 {
		t.Fatalf("rtmpdump recording has %d video frames", n)
	}
}
