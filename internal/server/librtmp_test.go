package server

// Interop with librtmp (rtmpdump, GStreamer's rtmpsink) and GStreamer's own
// RTMP stack (rtmp2sink): RTMPS through the certificate configuration the
// daemon serves, the commands these players send around play, and how
// rtmp2sink ends a publication.

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/amf"
	"github.com/rtmp-server/rtmp-server/internal/certs"
	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/client"
	"github.com/rtmp-server/rtmp-server/internal/message"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// startTLSServer serves RTMPS on a loopback port with a self-signed
// certificate and the TLS configuration the daemon uses (certs.Reloader).
func startTLSServer(t testing.TB) *testServer {
	t.Helper()
	certFile, keyFile := testpeer.SelfSigned(t, 1).WriteTemp(t)
	rl, err := certs.Load(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	return startServerWrapped(t, func(ln net.Listener) net.Listener { return tls.NewListener(ln, rl.TLSConfig()) }, nil)
}

func (ts *testServer) rtmpsURL(channel, key string) string {
	return fmt.Sprintf("rtmps://%s/%s/%s", ts.addr, channel, key)
}

// dumpLive runs rtmpdump on a live url until its FLV output holds more than
// minBytes, then stops it and returns its output file and what it had
// printed on stderr until then (stopping it prints a read error of its own).
func dumpLive(t testing.TB, url string, minBytes int64) (string, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "dump.flv")
	dump := testpeer.StartProcess(t, peerLimit, "rtmpdump", "--live", "-r", url, "-o", out)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if fi, err := os.Stat(out); err == nil && fi.Size() > minBytes {
			break
		}
		select {
		case <-dump.Done():
			t.Fatalf("rtmpdump exited (%v) before writing %d bytes; stderr:\n%s", dump.Err(), minBytes, dump.Stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("rtmpdump wrote less than %d bytes in 30s; stderr:\n%s", minBytes, dump.Stderr.String())
		}
	}
	stderr := dump.Stderr.String()
	dump.Stop()
	return out, stderr
}

// TestRtmpdumpPlaysOverRTMPS plays with librtmp over TLS (GnuTLS), which
// drops the connection when the server sends TLS 1.3 session tickets.
func TestRtmpdumpPlaysOverRTMPS(t *testing.T) {
	t.Parallel()
	testpeer.Need(t, "rtmpdump")
	ts := startTLSServer(t)
	pub := publishFFmpeg(t, ts.rtmpsURL("live", "k"))
	ts.waitPublishing(t, "live", pub)
	out, _ := dumpLive(t, ts.rtmpsURL("live", "k"), 100<<10)
	checkH264AAC(t, ffprobeStreams(t, out))
}

// TestRtmpdumpPrintsNoError plays a live stream with rtmpdump, which sends
// FCSubscribe before play: every command it sends must get an answer it
// takes without complaint.
func TestRtmpdumpPrintsNoError(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	pub := publishFFmpeg(t, ts.url("live", "k"))
	ts.waitPublishing(t, "live", pub)
	out, stderr := dumpLive(t, ts.url("live", "k"), 50<<10)
	if strings.Contains(stderr, "ERROR") {
		t.Fatalf("rtmpdump reported an error:\n%s", stderr)
	}
	checkH264AAC(t, ffprobeStreams(t, out))
}

// TestRtmpsinkPublishesOverRTMPS publishes with GStreamer's rtmpsink
// (librtmp on GnuTLS) over TLS and plays the stream back with ffmpeg.
func TestRtmpsinkPublishesOverRTMPS(t *testing.T) {
	t.Parallel()
	testpeer.NeedGStreamer(t, "videotestsrc", "x264enc", "flvmux", "rtmpsink")
	ts := startTLSServer(t)
	pub := testpeer.StartProcess(t, peerLimit, "gst-launch-1.0", gstVideoSource(250, "rtmpsink", `location="`+ts.rtmpsURL("live", "k")+` live=1"`)...)
	ts.waitPublishing(t, "live", pub)
	decodeFrames(t, ts.rtmpsURL("live", "k"), 25)
}

// gstVideoSource is a gst-launch-1.0 pipeline: frames of H.264 (25 fps, a
// keyframe a second) in FLV, into sink with its properties (gst-launch
// syntax: a value with spaces is quoted).
func gstVideoSource(frames int, sink string, props ...string) []string {
	args := []string{"-q",
		"videotestsrc", fmt.Sprintf("num-buffers=%d", frames), "is-live=true", "!",
		"video/x-raw,width=320,height=240,framerate=25/1", "!",
		"x264enc", "tune=zerolatency", "speed-preset=ultrafast", "key-int-max=25", "!",
		"flvmux", "streamable=true", "!", sink}
	return append(args, props...)
}

// TestFFmpegPlayerCommandsAnswered plays with ffmpeg the two ways that make
// it send FCSubscribe (-rtmp_live live) and getStreamLength (-rtmp_live
// recorded; VLC plays through the same code): an answer it does not expect
// is printed as a warning.
func TestFFmpegPlayerCommandsAnswered(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	pub := publishFFmpeg(t, ts.url("live", "k"))
	ts.waitPublishing(t, "live", pub)
	for _, mode := range []string{"live", "recorded"} {
		t.Run(mode, func(t *testing.T) {
			p := testpeer.StartProcess(t, peerLimit, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "warning", "-rw_timeout", "10000000",
				"-rtmp_live", mode, "-i", ts.url("live", "k"), "-map", "0:v", "-frames:v", "5", "-f", "framecrc", "-")
			if err := p.Wait(t, 40*time.Second); err != nil {
				t.Fatalf("ffmpeg player: %v\n%s", err, p.Stderr.String())
			}
			for _, bad := range []string{"Server error", "Unexpected reply"} {
				if strings.Contains(p.Stderr.String(), bad) {
					t.Fatalf("ffmpeg printed %q:\n%s", bad, p.Stderr.String())
				}
			}
			if n := strings.Count(p.Stdout.String(), "\n0,"); n < 5 {
				t.Fatalf("ffmpeg decoded %d frames", n)
			}
		})
	}
}

// sendCommand writes an AMF0 command with the given transaction id, as
// clients that do not expect an answer send them (txn 0).
func sendCommand(t testing.TB, c *client.Conn, streamID uint32, vals ...any) {
	t.Helper()
	p, err := amf.AppendAMF0All(nil, vals...)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(&chunk.Message{ChunkStreamID: 3, Type: message.TypeCommandAMF0, StreamID: streamID, Payload: p}); err != nil {
		t.Fatal(err)
	}
}

// TestPlayerQueries checks the answers to what players send besides play.
func TestPlayerQueries(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	c := ts.dial(t, "live")
	readCommand := func() *client.Command {
		t.Helper()
		cmd, err := c.ReadCommand()
		if err != nil {
			t.Fatal(err)
		}
		return cmd
	}

	// FCSubscribe: onFCSubscribe with Play.Start, then the result of the call.
	txn, err := c.Call(0, "FCSubscribe", nil, "k")
	if err != nil {
		t.Fatal(err)
	}
	if cmd := readCommand(); cmd.Name != "onFCSubscribe" || cmd.StatusOf().Code != "NetStream.Play.Start" {
		t.Fatalf("FCSubscribe answered %s %+v, want onFCSubscribe NetStream.Play.Start", cmd.Name, cmd.StatusOf())
	}
	if cmd := readCommand(); cmd.Name != "_result" || cmd.Txn != txn {
		t.Fatalf("FCSubscribe answered %s txn %v, want _result txn %v", cmd.Name, cmd.Txn, txn)
	}

	// getStreamLength: _result, txn, null, length (0 for a live stream), as
	// ffmpeg reads it; it is sent on the play stream.
	txn, err = c.Call(c.StreamID(), "getStreamLength", nil, "k")
	if err != nil {
		t.Fatal(err)
	}
	cmd := readCommand()
	if cmd.Name != "_result" || cmd.Txn != txn || len(cmd.Values) != 2 || cmd.Values[0] != nil || cmd.Values[1] != 0.0 {
		t.Fatalf("getStreamLength answered %s txn %v %#v, want _result txn %v [nil 0]", cmd.Name, cmd.Txn, cmd.Values, txn)
	}

	// FCUnsubscribe: the result of the call.
	txn, err = c.Call(0, "FCUnsubscribe", nil, "k")
	if err != nil {
		t.Fatal(err)
	}
	if cmd := readCommand(); cmd.Name != "_result" || cmd.Txn != txn {
		t.Fatalf("FCUnsubscribe answered %s txn %v, want _result txn %v", cmd.Name, cmd.Txn, txn)
	}

	// A method the server does not know still gets an error.
	txn, err = c.Call(0, "noSuchMethod", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cmd := readCommand(); cmd.Name != "_error" || cmd.Txn != txn {
		t.Fatalf("noSuchMethod answered %s txn %v, want _error txn %v", cmd.Name, cmd.Txn, txn)
	}
}

// TestDeleteStreamByName ends a publication with deleteStream or
// closeStream naming the stream instead of its ID, on message stream 0, as
// GStreamer's rtmp2sink sends them.
func TestDeleteStreamByName(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		publish   string
		command   string
		arg       any
		unpublish bool
	}{
		{"deleteStream key", "k", "deleteStream", "k", true},
		{"deleteStream key with query", "k?token=1", "deleteStream", "k?token=1", true},
		{"deleteStream key without the query", "k?token=1", "deleteStream", "k", true},
		{"closeStream key", "k", "closeStream", "k", true},
		{"deleteStream other key", "k", "deleteStream", "other", false},
		{"deleteStream other ID", "k", "deleteStream", 7.0, false},
		{"deleteStream ID", "k", "deleteStream", 1.0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, nil)
			c := ts.dial(t, "live")
			if st, err := c.Publish(tt.publish); err != nil {
				t.Fatal(st, err)
			}
			sendCommand(t, c, 0, "FCUnpublish", 0.0, nil, tt.arg)
			sendCommand(t, c, 0, tt.command, 0.0, nil, tt.arg)
			// A call after them: its answer shows they were handled.
			txn, err := c.Call(0, "createStream", nil)
			if err != nil {
				t.Fatal(err)
			}
			unpublished := false
			for {
				cmd, err := c.ReadCommand()
				if err != nil {
					t.Fatal(err)
				}
				if cmd.Name == "onStatus" && cmd.StatusOf().Code == "NetStream.Unpublish.Success" {
					unpublished = true
				}
				if cmd.Txn == txn {
					break
				}
			}
			if unpublished != tt.unpublish {
				t.Fatalf("unpublished: %v, want %v", unpublished, tt.unpublish)
			}
			if gone := ts.Hub().Lookup("live") == nil; gone != tt.unpublish {
				t.Fatalf("publication gone from the hub: %v, want %v", gone, tt.unpublish)
			}
		})
	}
}

// TestRtmp2sinkEndUnpublishesAtOnce publishes with GStreamer's rtmp2sink,
// which ends its stream with deleteStream naming the stream, through a
// proxy that keeps the server's side of the connection open after
// GStreamer closes its own: the publication must end on the command, not
// when the server notices that the publisher went silent.
func TestRtmp2sinkEndUnpublishesAtOnce(t *testing.T) {
	t.Parallel()
	testpeer.NeedGStreamer(t, "videotestsrc", "x264enc", "flvmux", "rtmp2sink")
	ts := startServer(t, nil)
	proxy := newCutProxy(t, ts.addr)
	pub := testpeer.StartProcess(t, peerLimit, "gst-launch-1.0", gstVideoSource(75, "rtmp2sink", "location="+proxy.url("live", "k"))...)
	ts.waitPublishing(t, "live", pub)
	player := ts.dial(t, "live")
	if st, err := player.Play("k"); err != nil {
		t.Fatal(st, err)
	}
	if err := pub.Wait(t, 30*time.Second); err != nil {
		t.Fatalf("gst-launch-1.0: %v\n%s", err, pub.Stderr.String())
	}
	ended := time.Now()
	waitFor(t, "publication ended", PublisherTimeout/2, func() bool { return ts.Hub().Lookup("live") == nil })
	t.Logf("unpublished %v after GStreamer ended", time.Since(ended).Round(time.Millisecond))
	_ = player.SetDeadline(time.Now().Add(5 * time.Second))
	for {
		st, err := player.WaitStatus()
		if err != nil {
			t.Fatalf("player: no UnpublishNotify: %v", err)
		}
		if st.Code == "NetStream.Play.UnpublishNotify" {
			break
		}
	}
	ts.events.wait(t, "the publication ended on deleteStream", 1, func(ev Event) bool {
		return ev.Kind == StreamEnded && ev.Reason == "deleteStream"
	})
}
