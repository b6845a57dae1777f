package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/server"
	"github.com/rtmp-server/rtmp-server/internal/servertest"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// rtmpServer runs a server on a free port for the test. Its Observer
// counts events in the Metrics stored in observed, once there is one.
func rtmpServer(t *testing.T) (*server.Server, string, *atomic.Pointer[Metrics]) {
	t.Helper()
	observed := &atomic.Pointer[Metrics]{}
	opts := server.DefaultOptions()
	opts.MaxIPConnections = 0
	logs := &testpeer.Buffer{}
	srv, err := server.New(opts, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv.Observer = func(ev server.Event) { observed.Load().Observe(ev) }
	addr := servertest.Start(t, srv, server.ErrServerClosed)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return srv, addr, observed
}

// peerLimit bounds each peer program's run.
const peerLimit = 2 * time.Minute

func startProcess(t *testing.T, name string, args ...string) *testpeer.Process {
	t.Helper()
	return testpeer.StartProcess(t, peerLimit, name, args...)
}

// Known figures of the published stream.
const (
	pubFrameRate   = 25
	pubVideoBPS    = 1_000_000
	pubAudioBPS    = 64_000
	pubGOPFrames   = 50
	pubWidth       = 640
	pubHeight      = 360
	measureMinimum = 7 * time.Second // the 5 s window, full, after the start
)

// publishCBR publishes H.264 at a constant 1 Mbit/s (x264's CBR with
// filler) and 25 fps with a keyframe every 2 s, and AAC at 64 kbit/s.
func publishCBR(t *testing.T, url string) *testpeer.Process {
	return startProcess(t, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", pubWidth, pubHeight, pubFrameRate),
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
		"-g", fmt.Sprint(pubGOPFrames), "-keyint_min", fmt.Sprint(pubGOPFrames), "-sc_threshold", "0",
		"-b:v", "1M", "-minrate", "1M", "-maxrate", "1M", "-bufsize", "500k", "-x264-params", "nal-hrd=cbr:filler=1",
		"-c:a", "aac", "-b:a", "64k",
		"-f", "flv", url)
}

func within(got, want, tolerance float64) bool { return math.Abs(got-want) <= tolerance*want }

// TestMeasuredFiguresWithFFmpeg publishes with ffmpeg at a known bitrate
// and frame rate, plays it with ffmpeg, and checks what the admin
// endpoints report: the measured figures within 10 %, metrics that parse
// and move, series that end with the stream, and no stream key anywhere.
func TestMeasuredFiguresWithFFmpeg(t *testing.T) {
	testpeer.Need(t, "ffmpeg")
	srv, rtmpAddr, observed := rtmpServer(t)
	const token = "e2e-admin-token-5"
	const key = "e2eStreamKey4242"
	metrics := NewMetrics(srv.Hub())
	observed.Store(metrics)
	base := startAdmin(t, &Server{Source: srv.Hub(), Metrics: metrics, Token: token, Healthy: srv.Healthy})
	url := "rtmp://" + rtmpAddr + "/live/" + key

	// A publish with a key of the wrong form is refused, and counted.
	bad := startProcess(t, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc2=size=160x90:rate=5", "-t", "1", "-c:v", "libx264", "-f", "flv",
		"rtmp://"+rtmpAddr+"/live/bad.key")
	<-bad.Done()
	refused := map[string]string{"result": "refused", "reason": "invalid stream key: want 1 to 128 characters a-z A-Z 0-9 - _"}
	testpeer.WaitFor(t, "the refusal counted", 10*time.Second, func() bool {
		v, ok := value(scrape(t, base, token), "rtmp_publishes_total", refused)
		return ok && v == 1
	})

	before := scrape(t, base, token)
	pub := publishCBR(t, url)
	testpeer.WaitFor(t, "the publication", 20*time.Second, func() bool { return srv.Hub().Lookup("live") != nil })
	player := startProcess(t, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-rw_timeout", "20000000",
		"-i", url, "-f", "null", "-")

	// Wait for a full measurement window with the player on.
	var st Stream
	testpeer.WaitFor(t, "a full measurement window", 30*time.Second, func() bool {
		code, body := get(t, "GET", base+"/v1/streams/live", token, nil)
		if code != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil {
			return false
		}
		return st.UptimeSeconds >= measureMinimum.Seconds() && len(st.Players) == 1 && st.Players[0].BytesSent > 0
	})
	select {
	case <-pub.Done():
		t.Fatalf("publisher exited: %v\n%s", pub.Err(), pub.Stderr.String())
	case <-player.Done():
		t.Fatalf("player exited: %v\n%s", player.Err(), player.Stderr.String())
	default:
	}

	// A player with the wrong key is refused, and counted.
	wrong := startProcess(t, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-rw_timeout", "20000000",
		"-i", "rtmp://"+rtmpAddr+"/live/wrongKey77", "-t", "1", "-f", "null", "-")
	<-wrong.Done()
	playRefused := map[string]string{"result": "refused", "reason": "stream key does not match the publisher's"}
	testpeer.WaitFor(t, "the refused play counted", 10*time.Second, func() bool {
		v, ok := value(scrape(t, base, token), "rtmp_plays_total", playRefused)
		return ok && v == 1
	})

	// Rates move by a frame or two between readings, and a publisher
	// starved of CPU sends in bursts, which a measurement over wall-clock
	// time rightly shows: wait (up to 40 s) for three readings in a row
	// that all match what ffmpeg was asked to send. A measurement that is
	// wrong stays wrong, and fails.
	var fps, vbps, abps, keyint []float64
	matches := func(i int) bool {
		return within(fps[i], pubFrameRate, 0.1) && within(vbps[i], pubVideoBPS, 0.1) &&
			within(abps[i], pubAudioBPS, 0.15) && within(keyint[i], float64(pubGOPFrames)/pubFrameRate, 0.1)
	}
	steady := 0
	for deadline := time.Now().Add(40 * time.Second); steady < 3 && time.Now().Before(deadline); {
		last := st.UptimeSeconds
		testpeer.WaitFor(t, "a later reading", 10*time.Second, func() bool {
			code, body := get(t, "GET", base+"/v1/streams/live", token, nil)
			return code == http.StatusOK && json.Unmarshal([]byte(body), &st) == nil && st.UptimeSeconds >= last+0.7
		})
		fps = append(fps, st.Video.FrameRate)
		vbps = append(vbps, st.Video.BitrateBPS)
		abps = append(abps, st.Audio.BitrateBPS)
		keyint = append(keyint, st.Video.KeyframeIntervalSeconds)
		if matches(len(fps) - 1) {
			steady++
		} else {
			steady = 0
		}
	}
	t.Logf("measured: %v fps, %v bit/s video, %v bit/s audio, keyframe interval %v s", fps, vbps, abps, keyint)
	if steady < 3 {
		t.Errorf("no three readings in a row within bounds: frame rate want %d ±10%% (all: %v); video bitrate want %d ±10%% (all: %v); "+
			"audio bitrate want about %d (all: %v); keyframe interval want 2 s ±10%% (all: %v)",
			pubFrameRate, fps, pubVideoBPS, vbps, pubAudioBPS, abps, keyint)
	}
	if st.Video.Codec != "avc1" || st.Video.CodecID != 7 || st.Audio.Codec != "mp4a" || st.Audio.CodecID != 10 {
		t.Errorf("codecs %+v %+v, want avc1/7 and mp4a/10", st.Video, st.Audio)
	}
	if st.Video.Width != pubWidth || st.Video.Height != pubHeight || st.Video.DeclaredFrameRate != pubFrameRate {
		t.Errorf("declared %gx%g at %g fps, want %dx%d at %d", st.Video.Width, st.Video.Height, st.Video.DeclaredFrameRate, pubWidth, pubHeight, pubFrameRate)
	}
	if st.Publisher == nil || st.Publisher.Address != "127.0.0.1" || !strings.HasPrefix(st.Publisher.Encoder, "Lavf") ||
		!strings.HasPrefix(st.Publisher.FlashVer, "FMLE/3.0 (compatible; Lavf") {
		t.Errorf("publisher %+v, want 127.0.0.1, a Lavf encoder and ffmpeg's flashVer", st.Publisher)
	}
	if st.TimestampAnomalies.Backwards+st.TimestampAnomalies.Jumps != 0 || math.Abs(st.AVDriftSeconds) > 1 {
		t.Errorf("anomalies %+v, drift %.3f s; want none and under 1 s", st.TimestampAnomalies, st.AVDriftSeconds)
	}
	if len(st.BitrateHistoryBPS) < int(measureMinimum/time.Second)-1 || st.GOPCachePackets == 0 || st.StreamID == "" {
		t.Errorf("history %v, GOP cache %d packets, stream id %q", st.BitrateHistoryBPS, st.GOPCachePackets, st.StreamID)
	}
	if p := st.Players[0]; p.Address != "127.0.0.1" || !p.Playing {
		t.Errorf("player %+v", p)
	}

	// Metrics parse, counters moved, per-stream series are there.
	during := scrape(t, base, token)
	for _, name := range []string{"rtmp_received_bytes_total", "rtmp_sent_bytes_total", "rtmp_received_messages_total"} {
		b, _ := value(before, name, nil)
		d, _ := value(during, name, nil)
		if d <= b {
			t.Errorf("%s did not move: %v then %v", name, b, d)
		}
	}
	live := map[string]string{"channel": "live"}
	if v, ok := value(during, "rtmp_stream_frames_per_second", live); !ok || !within(v, pubFrameRate, 0.15) {
		t.Errorf("rtmp_stream_frames_per_second{channel=live} = %v (%v)", v, ok)
	}
	if v, ok := value(during, "rtmp_stream_players", live); !ok || v != 1 {
		t.Errorf("rtmp_stream_players{channel=live} = %v (%v)", v, ok)
	}
	// The server's events, through Observe.
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"rtmp_publishes_total", map[string]string{"result": "accepted"}, 1},
		{"rtmp_plays_total", map[string]string{"result": "accepted"}, 1},
		{"rtmp_connections", map[string]string{"role": "publisher", "state": "publishing"}, 1},
		{"rtmp_connections", map[string]string{"role": "player", "state": "playing"}, 1},
		{"rtmp_connections_opened_total", nil, 4}, // the refused publisher and player, the publisher, the player
	} {
		if v, ok := value(during, c.name, c.labels); !ok || v != c.want {
			t.Errorf("%s%v = %v (%v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}

	// No response shows the key.
	for _, path := range []string{"/metrics", "/v1/streams", "/v1/streams/live", "/", "/healthz", "/readyz"} {
		if _, body := get(t, "GET", base+path, token, nil); strings.Contains(body, key) {
			t.Errorf("%s shows the stream key", path)
		}
	}
	if code, _ := get(t, "GET", base+"/v1/streams", "", nil); code != http.StatusUnauthorized {
		t.Errorf("/v1/streams without the token: %d, want 401", code)
	}

	// The stream ends: its series go.
	player.Stop()
	pub.Stop()
	testpeer.WaitFor(t, "the publication to end", 15*time.Second, func() bool { return srv.Hub().Lookup("live") == nil })
	after := scrape(t, base, token)
	for _, name := range []string{"rtmp_stream_frames_per_second", "rtmp_stream_received_bytes_total", "rtmp_stream_players"} {
		if _, ok := value(after, name, live); ok {
			t.Errorf("%s{channel=live} still there after the stream ended", name)
		}
	}
	if v, _ := value(after, "rtmp_publishers", nil); v != 0 {
		t.Errorf("rtmp_publishers %v after the end, want 0", v)
	}
	testpeer.WaitFor(t, "no connection left in the gauge", 10*time.Second, func() bool {
		fams := scrape(t, base, token)
		f := fams["rtmp_connections"]
		if f == nil {
			return false
		}
		for _, m := range f.Metric {
			if m.GetGauge().GetValue() != 0 {
				return false
			}
		}
		return true
	})
}

// TestStatusPageInChromium loads the status page in headless Chromium while
// ffmpeg publishes, with ADMIN_TOKEN set: without credentials it gets the
// 401 page; signed in with the token as the Basic password (as a person
// does when the browser asks), it renders the stream, read from
// /v1/streams with the same credentials. The test checks the rendered DOM
// and saves a screenshot in the test's directory.
func TestStatusPageInChromium(t *testing.T) {
	testpeer.Need(t, "ffmpeg")
	chromium := testpeer.Need(t, "chromium")
	srv, rtmpAddr, _ := rtmpServer(t)
	const token = "chromium-admin-token-8"
	// One forward of the stream, as the daemon reports them, shown in its row.
	forwards := func() []Forward {
		return []Forward{{Channel: "studio", Target: "rtmp://origin.example/live/***", State: "retrying",
			Since: time.Now().Add(-3 * time.Second), BytesSent: 12345, Reconnects: 2, LastError: "dial: connection refused"}}
	}
	base := startAdmin(t, &Server{Source: srv.Hub(), Token: token, Forwards: forwards})
	signedIn := strings.Replace(base, "http://", "http://admin:"+token+"@", 1)
	const key = "chromiumKey77"
	pub := publishCBR(t, "rtmp://"+rtmpAddr+"/studio/"+key)
	testpeer.WaitFor(t, "the publication", 20*time.Second, func() bool {
		s, ok := srv.Hub().StreamStatsOf("studio")
		return ok && s.VideoFrames > 0 && s.AudioBytesIn > 0
	})

	dir := t.TempDir()
	run := func(args ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		common := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--disable-dev-shm-usage", "--user-data-dir=" + filepath.Join(dir, "profile"),
			// Time for the page's first fetch of /v1/streams to render.
			"--virtual-time-budget=5000", "--window-size=900,700"}
		cmd := exec.CommandContext(ctx, chromium, append(common, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
		}
		return out
	}
	// Headless, nobody answers the browser's sign-in prompt: no page.
	if dom := string(run("--dump-dom", base+"/")); strings.Contains(dom, "rtmp-server status") || strings.Contains(dom, "studio") {
		t.Errorf("without credentials, the page rendered:\n%s", dom)
	}
	dom := string(run("--dump-dom", signedIn+"/"))
	for _, want := range []string{`data-channel="studio"`, "avc1", "mp4a", "fps", "keyframe interval", "live stream(s)",
		"rtmp://origin.example/live/***", "retrying", "dial: connection refused", "0/1", "forwards live"} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %q:\n%s", want, dom)
		}
	}
	if strings.Contains(dom, key) {
		t.Error("the page shows the stream key")
	}
	shot := filepath.Join(dir, "status.png")
	run("--screenshot="+shot, signedIn+"/")
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 1000 {
		t.Errorf("no screenshot: %v", err)
	} else {
		t.Logf("screenshot: %s (%d bytes)", shot, fi.Size())
	}
	if keep := os.Getenv("RTMP_TEST_SCREENSHOT"); keep != "" {
		if b, err := os.ReadFile(shot); err == nil {
			_ = os.WriteFile(keep, b, 0o644)
		}
	}
	select {
	case <-pub.Done():
		t.Fatalf("publisher exited: %v\n%s", pub.Err(), pub.Stderr.String())
	default:
	}
}
