package server

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/handshake"
)

// TestObserverSeesHandshakeFailures: peers that do not complete the
// handshake (garbage, an HTTP request, a truncated C1, silence, a reset,
// plain RTMP on the RTMPS port) are each reported once as HandshakeFailed
// with the reason, before their ConnClosed; a peer that completes it is
// not.
func TestObserverSeesHandshakeFailures(t *testing.T) {
	plain := startServer(t, nil, func(s *Server) { s.HandshakeTimeout = 500 * time.Millisecond })
	secure := startTLSServer(t)

	c0c1 := append([]byte{handshake.Version}, make([]byte, handshake.Size)...)
	tests := []struct {
		name   string
		ts     *testServer
		send   []byte
		reset  bool // close with RST instead of FIN
		wait   bool // send nothing more: the server's deadline ends it
		reason string
		tls    bool
	}{
		{name: "garbage", ts: plain, send: bytes.Repeat([]byte{0xEE}, 2000), reason: HandshakeReasonBadVersion},
		{name: "an HTTP request", ts: plain, send: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), reason: HandshakeReasonBadVersion},
		{name: "truncated C1", ts: plain, send: c0c1[:700], reason: HandshakeReasonClosed},
		{name: "reset during C1", ts: plain, send: c0c1[:100], reset: true, reason: HandshakeReasonClosed},
		{name: "silent", ts: plain, wait: true, reason: HandshakeReasonTimeout},
		{name: "C0 and C1 but no C2", ts: plain, send: c0c1, wait: true, reason: HandshakeReasonTimeout},
		{name: "plain RTMP on RTMPS", ts: secure, send: c0c1, reason: HandshakeReasonInvalid, tls: true},
	}
	isFailure := func(ev Event) bool { return ev.Kind == HandshakeFailed }
	isClose := func(ev Event) bool { return ev.Kind == ConnClosed }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One peer at a time: the next failure is this peer's.
			before := len(tt.ts.events.matching(isFailure))
			nc, err := net.Dial("tcp", tt.ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if len(tt.send) > 0 {
				if _, err := nc.Write(tt.send); err != nil {
					t.Fatal(err)
				}
			}
			switch {
			case tt.wait:
				// Send nothing more; read until the server's deadline
				// closes the connection.
				_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
				if _, err := io.Copy(io.Discard, nc); err != nil {
					t.Fatalf("waiting for the server to close: %v", err)
				}
			case tt.reset:
				_ = nc.(*net.TCPConn).SetLinger(0)
				nc.Close()
			default:
				_ = nc.(*net.TCPConn).CloseWrite()
			}
			ev := tt.ts.events.wait(t, "the handshake failure", before+1, isFailure)[before]
			if ev.Reason != tt.reason || ev.TLS != tt.tls || !ev.ClientIP.IsLoopback() {
				t.Errorf("event %+v, want reason %q, TLS %v, from loopback", ev, tt.reason, tt.tls)
			}
			tt.ts.events.wait(t, "the close after it", 1, func(c Event) bool {
				return c.Kind == ConnClosed && c.Session == ev.Session && c.Reason == "handshake failed"
			})
			if n := len(tt.ts.events.matching(isFailure)); n != before+1 {
				t.Errorf("%d handshake failures reported, want %d", n, before+1)
			}
		})
	}

	// A completed handshake, in plain RTMP and in RTMPS, reports none.
	for _, ts := range []*testServer{plain, secure} {
		failures, closes := len(ts.events.matching(isFailure)), len(ts.events.matching(isClose))
		var nc net.Conn
		var err error
		if ts == secure {
			nc, err = tls.Dial("tcp", ts.addr, &tls.Config{InsecureSkipVerify: true})
		} else {
			nc, err = net.Dial("tcp", ts.addr)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := handshake.Client(nc, nil); err != nil {
			t.Fatalf("handshake: %v", err)
		}
		nc.Close()
		ts.events.wait(t, "the close", closes+1, isClose)
		if got := len(ts.events.matching(isFailure)); got != failures {
			t.Errorf("a completed handshake was reported as failed: %+v", ts.events.matching(isFailure)[failures:])
		}
	}
}
