package handshake

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

const (
	// peerTimeout bounds one real peer's run: start, handshake, connect.
	peerTimeout = 30 * time.Second
	// peerIOTimeoutMicros is the I/O timeout ffmpeg and rtmpdump are given,
	// so that they end on their own should the test not kill them.
	peerIOTimeoutMicros = 10_000_000
	// maxConnectBytes bounds how much the test reads while waiting for the
	// connect command after the handshake.
	maxConnectBytes = 4096
)

// connectCommand is how the AMF0 command name of a connect message begins:
// string marker, 16-bit length, "connect".
var connectCommand = []byte("\x02\x00\x07connect")

// realPeer is a real RTMP client program that the server-side tests run.
type realPeer struct {
	name    string // also the base name of its recording under testdata/peers
	program string
	args    func(url string) []string
	// wantDigest tells whether the peer's C1 is in the digest form.
	wantDigest bool
	// wantC2 is the C2 form the peer answers Server's S1 with.
	wantC2 C2Form
	// checksServer tells whether the peer refuses a digest-form S1 or S2
	// that does not validate.
	checksServer bool
}

var realPeers = []realPeer{
	{
		name:    "ffmpeg-publish",
		program: "ffmpeg",
		args: func(url string) []string {
			return testpeer.PublishArgs(url, testpeer.Source{Width: 64, Height: 64, Rate: 5, Duration: time.Second},
				"-rw_timeout", fmt.Sprint(peerIOTimeoutMicros))
		},
		wantDigest: true,
		wantC2:     C2Echo,
	},
	{
		// ffmpeg checks the server's S1 digest and S2 signature only when it
		// reads a stream, so playing is the strict test of the server side.
		name:    "ffmpeg-play",
		program: "ffmpeg",
		args: func(url string) []string {
			return []string{"-hide_banner", "-nostdin", "-loglevel", "error",
				"-rw_timeout", fmt.Sprint(peerIOTimeoutMicros), "-i", url, "-f", "null", "-"}
		},
		wantDigest:   true,
		wantC2:       C2Digest,
		checksServer: true,
	},
	{
		// librtmp sends the simple form unless it does RTMPE or SWF
		// verification.
		name:    "rtmpdump-play",
		program: "rtmpdump",
		args: func(url string) []string {
			return []string{"-q", "-r", url, "-o", "/dev/null",
				"-m", fmt.Sprint(peerIOTimeoutMicros / 1_000_000)}
		},
		wantDigest: false,
		wantC2:     C2Echo,
	},
	{
		// With SWF verification data librtmp sends the digest form, and
		// refuses a server whose S1 digest or S2 signature does not validate.
		// The hash and size are arbitrary: they are used only if the
		// server asks for SWF verification after the handshake.
		name:    "rtmpdump-play-swfverify",
		program: "rtmpdump",
		args: func(url string) []string {
			return []string{"-q", "-r", url, "-o", "/dev/null",
				"-w", strings.Repeat("5a", 32), "-x", "12345",
				"-m", fmt.Sprint(peerIOTimeoutMicros / 1_000_000)}
		},
		wantDigest:   true,
		wantC2:       C2Digest,
		checksServer: true,
	},
}

// recordingPath returns where the named peer's C0+C1+C2 (ext "c0c1c2") and
// the server's answer to it under fixedConfig (ext "s0s1s2") are kept.
func recordingPath(name, ext string) string {
	return filepath.Join("testdata", "peers", name+"."+ext)
}

// peerResult is what the goroutine that serves a real peer reports.
type peerResult struct {
	info     Info
	request  []byte // C0+C1+C2 as read by Server
	response []byte // S0+S1+S2 as written by Server
	after    []byte // what the peer sent after C2
	err      error
}

// TestRealPeers runs Server against real ffmpeg and rtmpdump and passes when
// each, after the handshake, sends its connect command. With -record it
// records what each sent, for TestRecordedPeers.
func TestRealPeers(t *testing.T) {
	for _, peer := range realPeers {
		t.Run(peer.name, func(t *testing.T) {
			path := testpeer.Need(t, peer.program)
			var cfg *Config
			if *record {
				cfg = fixedConfig()
			}
			res, output := servePeer(t, path, peer.args, cfg, nil)
			if res.err != nil {
				t.Fatalf("%v\n%s output:\n%s", res.err, peer.program, output)
			}
			if res.info.Digest != peer.wantDigest {
				t.Errorf("digest form = %v, want %v (%+v)", res.info.Digest, peer.wantDigest, res.info)
			}
			if res.info.C2 != peer.wantC2 {
				t.Errorf("C2 form = %v, want %v", res.info.C2, peer.wantC2)
			}
			t.Logf("%s: %+v, then %d bytes of connect", peer.name, res.info, len(res.after))
			if *record {
				writeFile(t, recordingPath(peer.name, "c0c1c2"), res.request)
				writeFile(t, recordingPath(peer.name, "s0s1s2"), res.response)
			}
		})
	}
}

// TestRealPeersRejectBadServer shows that the peers marked checksServer do
// check the server's digest form: with S1's digest or S2's signature broken
// they never send connect. So TestRealPeers passing with them means that
// Server's digests are right.
func TestRealPeersRejectBadServer(t *testing.T) {
	tampers := []struct {
		name   string
		tamper func(response []byte)
	}{
		// Byte 1000 of S1 is outside both schemes' offset bytes, so it is
		// either the digest itself or covered by it.
		{"S1 digest", func(response []byte) { response[1+1000] ^= 0x80 }},
		{"S2 signature", func(response []byte) { response[len(response)-1] ^= 0x80 }},
	}
	for _, peer := range realPeers {
		if !peer.checksServer {
			continue
		}
		for _, tt := range tampers {
			t.Run(peer.name+"/"+tt.name, func(t *testing.T) {
				path := testpeer.Need(t, peer.program)
				res, output := servePeer(t, path, peer.args, nil, tt.tamper)
				if !res.info.Digest {
					t.Fatalf("the peer's C1 was not in the digest form: %+v", res.info)
				}
				if res.err == nil {
					t.Fatalf("%s sent connect after a broken %s\n%s output:\n%s", peer.program, tt.name, peer.program, output)
				}
				t.Logf("%s stopped: %v; it printed: %s", peer.program, res.err, strings.TrimSpace(output))
			})
		}
	}
}

// servePeer listens on a free loopback port, starts program with the
// rtmp:// URL of that port, runs Server on the first connection and then
// reads until the peer's connect command. A non-nil tamper changes S0+S1+S2
// on its way to the peer (not in the result). It kills the program and waits
// for it before returning, and returns what the program printed.
func servePeer(t *testing.T, program string, args func(url string) []string, cfg *Config, tamper func([]byte)) (peerResult, string) {
	t.Helper()
	ln := testpeer.Listen(t)
	deadline := time.Now().Add(peerTimeout)
	p := testpeer.StartCommand(t, peerTimeout, exec.Command(program, args("rtmp://"+ln.Addr().String()+"/app/key")...))
	go func() {
		<-p.Done()
		// A peer that ends before connecting must not leave Accept waiting.
		ln.Close()
	}()

	results := make(chan peerResult, 1)
	go func() { results <- servePeerConn(ln, deadline, cfg, tamper) }()
	res := <-results
	p.Kill()
	return res, p.Stdout.String() + p.Stderr.String()
}

// servePeerConn accepts one connection from ln and runs the server side of
// the handshake on it, then reads until the connect command.
func servePeerConn(ln net.Listener, deadline time.Time, cfg *Config, tamper func([]byte)) peerResult {
	conn, err := ln.Accept()
	if err != nil {
		return peerResult{err: fmt.Errorf("peer never connected: %w", err)}
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return peerResult{err: err}
	}
	var request, response bytes.Buffer
	var toPeer io.Writer = conn
	if tamper != nil {
		toPeer = tamperWriter{conn, tamper}
	}
	info, err := ServerWithInfo(readWriter{io.TeeReader(conn, &request), io.MultiWriter(toPeer, &response)}, cfg)
	res := peerResult{info: info, request: request.Bytes(), response: response.Bytes()}
	if err != nil {
		res.err = fmt.Errorf("server handshake: %w", err)
		return res
	}
	res.after, res.err = readConnect(conn)
	return res
}

// tamperWriter hands w a copy of each buffer after tamper changed it.
type tamperWriter struct {
	w      io.Writer
	tamper func([]byte)
}

func (tw tamperWriter) Write(p []byte) (int, error) {
	q := bytes.Clone(p)
	tw.tamper(q)
	return tw.w.Write(q)
}

// readConnect reads the first RTMP chunk after the handshake until it holds
// the connect command, and checks its basic header: format 0 on chunk stream
// 3, message type 20 (AMF0 command).
func readConnect(r io.Reader) ([]byte, error) {
	buf := make([]byte, 0, maxConnectBytes)
	for !bytes.Contains(buf, connectCommand) {
		if len(buf) == cap(buf) {
			return buf, fmt.Errorf("no connect command in the first %d bytes", len(buf))
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil && !bytes.Contains(buf, connectCommand) {
			return buf, fmt.Errorf("reading connect after %d bytes: %w", len(buf), err)
		}
	}
	const basicHeader, messageTypeAt, amf0Command = 0x03, 7, 20
	if buf[0] != basicHeader {
		return buf, fmt.Errorf("first chunk header byte = %#02x, want %#02x (format 0, chunk stream 3)", buf[0], basicHeader)
	}
	if len(buf) <= messageTypeAt || buf[messageTypeAt] != amf0Command {
		return buf, errors.New("first chunk is not an AMF0 command message")
	}
	return buf, nil
}
