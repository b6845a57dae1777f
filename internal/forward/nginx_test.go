package forward_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// peerLimit bounds a peer program of these tests.
const peerLimit = 2 * time.Minute

// decodeErrors matches what ffmpeg prints when the stream it decodes is
// damaged (a player joining mid-stream may print other lines with
// "error", about timestamps, which are not decoding errors).
var decodeErrors = regexp.MustCompile(`(?i)error while decoding|decode_slice|concealing|missing picture|invalid nal|no frame|corrupt`)

// playDecodes plays url with ffmpeg for two seconds, decoding everything,
// and fails on decoding errors.
func playDecodes(t *testing.T, url string) {
	t.Helper()
	p := testpeer.StartProcess(t, peerLimit, "ffmpeg", append(append([]string{}, testpeer.FFmpegQuiet...),
		"-rw_timeout", "10000000", "-i", url, "-t", "2", "-f", "null", "-")...)
	if err := p.Wait(t, waitLimit); err != nil {
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
	size := func() int64 {
		fi, err := os.Stat(out)
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	dump := testpeer.StartProcess(t, peerLimit, "rtmpdump", "--live", "-q", "-r", url, "-o", out)
	testpeer.WaitFor(t, "rtmpdump's recording", waitLimit, func() bool { return size() > minBytes || dump.Exited() })
	dump.Stop()
	if size() <= minBytes {
		t.Fatalf("rtmpdump wrote %d bytes (want more than %d): %v\n%s", size(), minBytes, dump.Err(), dump.Stderr.String())
	}
	dec := testpeer.StartProcess(t, peerLimit, "ffmpeg", append(append([]string{}, testpeer.FFmpegQuiet...), "-i", out, "-f", "null", "-")...)
	if err := dec.Wait(t, waitLimit); err != nil {
		t.Fatalf("ffmpeg decoding rtmpdump's recording: %v\n%s", err, dec.Stderr.String())
	}
	if bad := decodeErrors.FindAllString(dec.Stderr.String(), -1); len(bad) > 0 {
		t.Fatalf("decoding rtmpdump's recording: %q\n%s", bad, dec.Stderr.String())
	}
}

// TestForwardToNginx forwards an ffmpeg publish to nginx-rtmp
// (libnginx-mod-rtmp), from which ffmpeg and rtmpdump play and decode
// without error; when the publisher stops, the forward ends.
func TestForwardToNginx(t *testing.T) {
	t.Parallel()
	testpeer.Need(t, "ffmpeg")
	testpeer.Need(t, "rtmpdump")
	nginx := testpeer.StartNginx(t, "app")
	origin := startNode(t, forwardToTemplate(t, "rtmp://"+nginx.Addr+"/app/{channel}-{key}"))
	pub := testpeer.StartProcess(t, peerLimit, "ffmpeg", testpeer.PublishArgs("rtmp://"+origin.addr+"/live/k",
		testpeer.Source{Audio: true, GOP: 25})...)
	testpeer.WaitFor(t, "the forward live", waitLimit, func() bool {
		st := origin.fwd.Forwards()
		return len(st) == 1 && st[0].State == "live" || pub.Exited()
	})
	url := "rtmp://" + nginx.Addr + "/app/live-k"
	playDecodes(t, url)
	dumpDecodes(t, url, 200<<10)
	pub.Stop()
	testpeer.WaitFor(t, "the forward ended", waitLimit, func() bool { return len(origin.fwd.Forwards()) == 0 })
}
