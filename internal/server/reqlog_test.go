package server

import (
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRequestLogLines checks the request log's lines, field for field, as
// operators' tools and the daemon's tests read them.
func TestRequestLogLines(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.7")
	tests := []struct {
		name string
		ev   Event
		want string // "" for no line
	}{
		{"accepted", Event{Kind: ConnAccepted}, `msg="connection accepted" session=9 client_ip=192.0.2.7 event=connection_accepted`},
		{"handshake failed", Event{Kind: ConnClosed, Reason: "timed out", HandshakeFailed: true},
			`msg="connection closed" session=9 client_ip=192.0.2.7 event=connection_closed reason="handshake failed"`},
		{"closed", Event{Kind: ConnClosed, Channel: "live", Reason: "closed by peer"},
			`msg="connection closed" session=9 client_ip=192.0.2.7 channel=live event=connection_closed reason="closed by peer"`},
		{"over the address limit", Event{Kind: ConnectRefused, Reason: reasonOverIPLimit, Limit: 4},
			`msg=rejected session=9 client_ip=192.0.2.7 event=rejected reason="too many connections from this address" limit=4`},
		{"draining", Event{Kind: ConnectRefused, Reason: drainReason},
			`msg=rejected session=9 client_ip=192.0.2.7 event=rejected reason="` + drainReason + `"`},
		{"key in the URL", Event{Kind: ConnectRefused, Reason: reasonInvalidChannel + ": " + multiSegmentHint, Hint: multiSegmentHint, App: "live/...", AppHiddenBytes: 6},
			`msg=rejected session=9 client_ip=192.0.2.7 event=rejected reason="invalid channel" hint="` + multiSegmentHint + `" app=live/... app_hidden_bytes=6`},
		{"invalid channel", Event{Kind: ConnectRefused, Reason: reasonInvalidChannel, App: ""},
			`msg=rejected session=9 client_ip=192.0.2.7 event=rejected reason="invalid channel" app=""`},
		{"connect", Event{Kind: Connected, Channel: "live"}, `msg=connect session=9 client_ip=192.0.2.7 channel=live event=connect`},
		{"publish refused by the callback", Event{Kind: PublishRefused, Channel: "live", Reason: "callback refused", Err: errors.New("403")},
			`msg=rejected session=9 client_ip=192.0.2.7 channel=live event=rejected action=publish reason="callback refused" err=403`},
		{"publish refused by a command", Event{Kind: PublishRefused, Channel: "live", Reason: "killed", Command: "close-stream", StreamID: "s1"},
			`msg=rejected session=9 client_ip=192.0.2.7 channel=live event=rejected action=publish reason=killed command=close-stream stream_id=s1`},
		{"publish", Event{Kind: PublishAccepted, Channel: "live", StreamID: "s1", ReplacedSession: 3},
			`msg=publish session=9 client_ip=192.0.2.7 channel=live event=publish stream_id=s1 replaced_session=3`},
		{"unpublish", Event{Kind: StreamEnded, Channel: "live", StreamID: "s1", Reason: "deleteStream", Duration: 1500400 * time.Microsecond},
			`msg=unpublish session=9 client_ip=192.0.2.7 channel=live event=unpublish stream_id=s1 reason=deleteStream duration=1.5s`},
		{"play refused", Event{Kind: PlayRefused, Channel: "live", Reason: "invalid stream key"},
			`msg=rejected session=9 client_ip=192.0.2.7 channel=live event=rejected action=play reason="invalid stream key"`},
		{"play waiting", Event{Kind: PlayAccepted, Channel: "live", Waiting: true},
			`msg=play session=9 client_ip=192.0.2.7 channel=live event=play state="waiting for publisher"`},
		{"play", Event{Kind: PlayAccepted, Channel: "live"}, `msg=play session=9 client_ip=192.0.2.7 channel=live event=play state=playing`},
		{"play stopped", Event{Kind: PlayStopped, Channel: "live"}, `msg="play stopped" session=9 client_ip=192.0.2.7 channel=live event=play_stopped`},
		{"no line for a skip", Event{Kind: PlayerSkipped, Skips: 2}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			logger := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}}))
			ev := tt.ev
			ev.Session, ev.ClientIP = 9, ip
			RequestLog(logger, nil)(ev)
			want := tt.want
			if want != "" {
				want = "level=INFO " + want + "\n"
			}
			if got := out.String(); got != want {
				t.Errorf("got  %q\nwant %q", got, want)
			}
		})
	}
}

func TestRequestLogOff(t *testing.T) {
	var out strings.Builder
	var on atomic.Bool
	log := RequestLog(slog.New(slog.NewTextHandler(&out, nil)), on.Load)
	log(Event{Kind: ConnAccepted})
	if out.Len() != 0 {
		t.Fatalf("logged while off: %q", out.String())
	}
	on.Store(true)
	log(Event{Kind: ConnAccepted})
	if !strings.Contains(out.String(), "connection accepted") {
		t.Fatalf("nothing logged once on: %q", out.String())
	}
}

func TestObserversFanOut(t *testing.T) {
	if Observers(nil, nil) != nil {
		t.Error("Observers of nothing is not nil")
	}
	var a, b []EventKind
	o := Observers(func(ev Event) { a = append(a, ev.Kind) }, nil, func(ev Event) { b = append(b, ev.Kind) })
	o(Event{Kind: Connected})
	o(Event{Kind: ConnClosed})
	if len(a) != 2 || len(b) != 2 || a[1] != ConnClosed || b[0] != Connected {
		t.Errorf("got %v and %v, want both [connected conn-closed]", a, b)
	}
}
