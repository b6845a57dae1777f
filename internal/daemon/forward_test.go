package daemon

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/callback"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// decodeErrors matches what ffmpeg prints when the stream it decodes is
// damaged (a player joining mid-stream may print other lines with
// "error", about timestamps, which are not decoding errors).
var decodeErrors = regexp.MustCompile(`(?i)error while decoding|decode_slice|concealing|missing picture|invalid nal|no frame|corrupt`)

// playDecodes plays url with ffmpeg for a few seconds, decoding everything,
// and fails on decoding errors.
func playDecodes(t *testing.T, url string) {
	t.Helper()
	p := startEvPeer(t, "ffmpeg", append(append([]string{}, testpeer.FFmpegQuiet...),
		"-rw_timeout", "10000000", "-i", url, "-t", "2", "-f", "null", "-")...)
	if err := p.Wait(t, 30*time.Second); err != nil {
		t.Fatalf("ffmpeg playing %s: %v\n%s", url, err, p.Stderr.String())
	}
	if bad := decodeErrors.FindAllString(p.Stderr.String(), -1); len(bad) > 0 {
		t.Fatalf("ffmpeg decoding errors playing %s: %q\n%s", url, bad, p.Stderr.String())
	}
}

// dumpDecodes records url with rtmpdump until it has minBytes of FLV, then
// decodes the recording with ffmpeg, which must find no error.
func dumpDecodes(t *testing.T, url string, minBytes int64) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "dump.flv")
	dump := startEvPeer(t, "rtmpdump", "--live", "-q", "-r", url, "-o", out)
	testpeer.WaitFor(t, "rtmpdump's recording", 30*time.Second, func() bool {
		return fileSize(out) > minBytes || dump.Exited()
	})
	dump.Stop()
	if fileSize(out) <= minBytes {
		t.Fatalf("rtmpdump wrote %d bytes (want more than %d): %v\n%s", fileSize(out), minBytes, dump.Err(), dump.Stderr.String())
	}
	dec := startEvPeer(t, "ffmpeg", append(append([]string{}, testpeer.FFmpegQuiet...), "-i", out, "-f", "null", "-")...)
	if err := dec.Wait(t, 30*time.Second); err != nil {
		t.Fatalf("ffmpeg decoding rtmpdump's recording: %v\n%s", err, dec.Stderr.String())
	}
	if bad := decodeErrors.FindAllString(dec.Stderr.String(), -1); len(bad) > 0 {
		t.Fatalf("decoding rtmpdump's recording: %q\n%s", bad, dec.Stderr.String())
	}
}

// TestForwardProcess runs two servers as processes: ffmpeg publishes to
// the first, which forwards to the second by FORWARD_URLS and by the
// forward-url headers of a real callback server (which also names invalid
// targets, skipped); ffmpeg and rtmpdump play from the second and decode
// without error. When the publisher stops, both forwards end their
// streams cleanly (deleteStream), and no log line shows the stream key.
func TestForwardProcess(t *testing.T) {
	t.Parallel()
	for _, peer := range []string{"ffmpeg", "ffprobe", "rtmpdump"} {
		testpeer.Need(t, peer)
	}
	bin := buildEventsServer(t)
	const key = "secret-key"
	target := startEvServer(t, bin, evSettings{})
	cb := startEvCallback(t, func(r testpeer.CallbackRequest) testpeer.CallbackReply {
		if r.Event != callback.EventStart {
			return testpeer.CallbackReply{}
		}
		return testpeer.CallbackReply{StreamID: "sid-fwd", ForwardURLs: []string{
			target.url("fromcallback", r.Key),
			"http://" + target.addr + "/not/rtmp",
			"rtmp://" + target.addr + "/no-stream-name",
		}}
	})
	origin := startEvServer(t, bin, evSettings{callback: cb, env: []string{
		"FORWARD_URLS=rtmp://" + target.addr + "/{channel}/{key}",
		"ADMIN_ADDRESS=127.0.0.1:0",
	}})
	adminAddr := origin.waitLog(t, "the admin listener", 1, nil, msgIs("listening", "proto", "http"))[0].fields["addr"]

	pub := publishEvFFmpeg(t, origin.url("live", key))
	live := origin.waitLog(t, "both forwards live", 2, pub, msgIs("forward: live"))
	masked := map[string]bool{}
	for _, l := range live {
		masked[l.fields["forward"]] = true
	}
	for _, want := range []string{"rtmp://" + target.addr + "/live/***", "rtmp://" + target.addr + "/fromcallback/***"} {
		if !masked[want] {
			t.Errorf("no forward: live line for %s; lines: %v", want, live)
		}
	}
	origin.waitLog(t, "the invalid callback targets skipped", 2, pub, msgIs("forward: target skipped"))

	_, metrics := httpGet(t, "http://"+adminAddr+"/metrics", "")
	for _, want := range []string{`rtmp_forwards{state="live"} 2`, `rtmp_forwards{state="retrying"} 0`, "rtmp_forward_bytes_total "} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q:\n%s", want, metrics)
		}
	}
	probeH264AAC(t, target.url("live", key))
	playDecodes(t, target.url("fromcallback", key))
	dumpDecodes(t, target.url("live", key), 200<<10)

	pub.Stop()
	origin.waitLog(t, "both forwards ended", 2, nil, msgIs("forward: ended"))
	target.waitLog(t, "both target streams ended by deleteStream", 2, nil, msgIs("unpublish", "reason", "deleteStream"))
	if strings.Contains(origin.log.String(), key) {
		t.Errorf("the origin's log shows the stream key:\n%s", origin.log.String())
	}
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
