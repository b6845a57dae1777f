package server

// A late VLC player of a GStreamer publication: GStreamer's flvmux sends
// onMetaData again a few seconds in, and VLC takes its clock from the
// first message it receives.

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/message"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// publishGStreamer publishes H.264 + AAC from GStreamer's flvmux through
// rtmp2sink until the test ends.
func publishGStreamer(t testing.TB, url string) *testpeer.Process {
	t.Helper()
	testpeer.NeedGStreamer(t, "videotestsrc", "x264enc", "h264parse", "flvmux", "rtmp2sink", "audiotestsrc", "voaacenc")
	return testpeer.StartProcess(t, peerLimit, "gst-launch-1.0", "-q",
		"videotestsrc", "is-live=true", "!", "video/x-raw,width=320,height=240,framerate=25/1", "!",
		"x264enc", "tune=zerolatency", "speed-preset=ultrafast", "key-int-max=250", "!", "h264parse", "!",
		"flvmux", "name=mux", "streamable=true", "!", "rtmp2sink", "location="+url,
		"audiotestsrc", "is-live=true", "!", "audioconvert", "!", "voaacenc", "!", "mux.")
}

// vlcPlayer is a cvlc process driven through its rc interface.
type vlcPlayer struct {
	*testpeer.Process
	stdin io.WriteCloser
}

var (
	vlcDisplayed   = regexp.MustCompile(`frames displayed\s*:\s*(\d+)`)
	vlcBuffersLost = regexp.MustCompile(`buffers lost\s*:\s*(\d+)`)
)

// startVLC plays url with cvlc (no video or audio output). VLC refuses to
// run as root, so as root it runs as nobody.
func startVLC(t testing.TB, url string) *vlcPlayer {
	t.Helper()
	path := testpeer.Need(t, "cvlc")
	home, err := os.MkdirTemp("", "vlc-home")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	if err := os.Chmod(home, 0o777); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, "--intf", "rc", "--rc-fake-tty", "--no-video-title-show",
		"--vout", "dummy", "--aout", "dummy", url)
	cmd.Env = append(os.Environ(), "HOME="+home)
	if os.Getuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	v := &vlcPlayer{Process: testpeer.StartCommand(t, peerLimit, cmd), stdin: stdin}
	// Registered after StartCommand, so it runs before the kill.
	t.Cleanup(func() {
		_, _ = io.WriteString(v.stdin, "quit\n")
		quit := time.NewTimer(5 * time.Second)
		defer quit.Stop()
		select {
		case <-v.Done():
		case <-quit.C:
		}
		v.Kill()
	})
	return v
}

// askStats asks VLC to print its statistics; it answers asynchronously.
func (v *vlcPlayer) askStats() { _, _ = io.WriteString(v.stdin, "stats\n") }

// displayed returns the highest count of frames displayed VLC has
// reported so far.
func (v *vlcPlayer) displayed() int {
	best := 0
	for _, m := range vlcDisplayed.FindAllStringSubmatch(v.Stdout.String(), -1) {
		if n, _ := strconv.Atoi(m[1]); n > best {
			best = n
		}
	}
	return best
}

// TestVLCJoinsAfterMetadataResent: GStreamer re-sends onMetaData seconds
// in; a player joining afterwards got it stamped seconds ahead of the
// cached GOP (4209, 0, 0, ...), and VLC, which takes its clock from the
// first message, dropped the cached media as late (or showed nothing).
// A late player must get time that never goes backwards, and VLC must
// display frames without dropping audio. (The hub's
// TestJoinTimestampsNeverGoBackwards covers every cache mode.)
func TestVLCJoinsAfterMetadataResent(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	pub := publishGStreamer(t, ts.url("live", "key"))
	ts.waitPublishing(t, "live", pub)

	// Wait until the publisher sends onMetaData again, seconds in
	// (it also sends it twice at the start).
	watch := ts.dial(t, "live")
	if st, err := watch.Play("key"); err != nil {
		t.Fatal(st, err)
	}
	if err := watch.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var sent []uint32
	for len(sent) == 0 || sent[len(sent)-1] < 4000 {
		m, err := watch.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for onMetaData to be sent again (sent at %v ms): %v\npublisher:\n%s", sent, err, pub.Stderr.String())
		}
		if m.Type == message.TypeDataAMF0 && bytes.Contains(m.Payload, []byte("onMetaData")) {
			sent = append(sent, m.Timestamp)
		}
	}
	t.Logf("onMetaData sent at %v ms", sent)

	// What a late player gets: metadata and headers stamped with
	// the first cached frame's timestamp, then the cache, and time
	// never goes backwards.
	late := ts.dial(t, "live")
	if st, err := late.Play("key"); err != nil {
		t.Fatal(st, err)
	}
	if err := late.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	got := readMedia(t, late, 20)
	first := -1
	for i, m := range got {
		if i > 0 && m.Timestamp < got[i-1].Timestamp {
			t.Fatalf("time goes backwards at message %d: %v", i, stamps(got[:i+1]))
		}
		if first < 0 && m.Type != message.TypeDataAMF0 && len(m.Payload) > 1 && m.Payload[1] != 0 {
			first = i // the first frame (not a codec header)
		}
	}
	if first < 0 || got[0].Timestamp != got[first].Timestamp {
		t.Fatalf("late player got %v: the first message is not stamped with the first frame's timestamp", stamps(got))
	}

	vlc := startVLC(t, ts.url("live", "key"))
	defer func() {
		if t.Failed() {
			t.Logf("VLC output:\n%s", tail(vlc.Stdout.String(), 40))
		}
	}()
	var asked time.Time
	testpeer.WaitFor(t, "VLC to display 25 frames", 30*time.Second, func() bool {
		if time.Since(asked) >= 250*time.Millisecond {
			asked = time.Now()
			vlc.askStats()
		}
		return vlc.displayed() >= 25
	})
	stats := lastStats(vlc.Stdout.String())
	t.Logf("VLC statistics:\n%s", stats)
	// Audio that VLC's clock finds late is dropped: with the metadata
	// stamped seconds ahead, nearly all the cached GOP's audio (185 of
	// about 190 buffers when tried). A loaded machine loses some anyway,
	// so the bound is half of it.
	cachedAudio := int(sent[len(sent)-1]) * 44100 / 1024 / 1000
	if m := vlcBuffersLost.FindStringSubmatch(stats); m == nil {
		t.Fatal("VLC reported no audio statistics")
	} else if n, _ := strconv.Atoi(m[1]); n > cachedAudio/2 {
		t.Fatalf("VLC dropped %d audio buffers as late, want at most %d (half of the cached GOP's)", n, cachedAudio/2)
	}
}

// lastStats returns the last statistics block VLC printed.
func lastStats(out string) string {
	i := strings.LastIndex(out, "+----[ begin of statistical info")
	if i < 0 {
		return ""
	}
	return out[i:]
}

// stamps lists messages as type@timestamp.
func stamps(ms []*chunk.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = strconv.Itoa(int(m.Type)) + "@" + strconv.FormatUint(uint64(m.Timestamp), 10)
	}
	return out
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
