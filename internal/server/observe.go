package server

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/handshake"
)

// EventKind is what an Event reports.
type EventKind uint8

// The events a Server reports to its Observer, in the order a connection
// goes through them.
const (
	// ConnAccepted: a connection was accepted and will be served.
	ConnAccepted EventKind = iota + 1
	// ConnRefused: a connection was closed at once, without a session
	// (MAX_CONNECTIONS reached); Reason says why.
	ConnRefused
	// HandshakeDone: the RTMP handshake succeeded.
	HandshakeDone
	// Connected: the connect command succeeded; Channel is set from here on.
	Connected
	// ConnectRefused: the connect command was refused; Reason says why.
	ConnectRefused
	// PublishAccepted: the connection publishes Channel; its stream has
	// started (StreamID).
	PublishAccepted
	// PublishRefused: a publish was refused; Reason says why.
	PublishRefused
	// StreamEnded: the connection's publication ended (StreamID, Reason,
	// Duration).
	StreamEnded
	// PlayAccepted: the connection plays Channel, or waits for its
	// publisher (Waiting).
	PlayAccepted
	// PlayRefused: a play was refused; Reason says why.
	PlayRefused
	// PlayStopped: the connection stopped playing.
	PlayStopped
	// PlayerSkipped: a player that fell behind lost queued media and
	// skipped to the next keyframe, Skips times since the last report. The
	// skip happens on the stream's fan-out, under its locks; it is reported
	// by the player's writer when it next takes from the queue (a write
	// blocked on a full socket ends by the write deadline), or when the
	// connection ends.
	PlayerSkipped
	// PlayerDropped: the connection was dropped for not reading what it
	// was sent; Reason says how.
	PlayerDropped
	// ConnClosed: the connection ended; Reason says why. It is the last
	// event of a connection that got ConnAccepted.
	ConnClosed
	// HandshakeFailed: the TLS or RTMP handshake failed (TLS says which);
	// Reason is one of the HandshakeReason constants. It comes before the
	// connection's ConnClosed. A connection ended by the server during its
	// handshake (shutdown, too many pending) does not report it.
	HandshakeFailed
	// ReconnectRequested: a draining server asked the connection, a
	// publisher that announced the capability, to reconnect elsewhere
	// (NetConnection.Connect.ReconnectRequest); Reason says why.
	ReconnectRequested
)

// The reasons of a HandshakeFailed event: a short, fixed set, so that
// they can label a metric.
const (
	HandshakeReasonTimeout    = "timeout"     // the peer did not finish in HandshakeTimeout
	HandshakeReasonClosed     = "closed"      // the peer closed or reset the connection
	HandshakeReasonBadVersion = "bad_version" // not RTMP: C0 is not version 3
	HandshakeReasonInvalid    = "invalid"     // anything else the peer got wrong
)

var eventNames = [...]string{
	ConnAccepted:       "conn-accepted",
	ConnRefused:        "conn-refused",
	HandshakeDone:      "handshake-done",
	Connected:          "connected",
	ConnectRefused:     "connect-refused",
	PublishAccepted:    "publish-accepted",
	PublishRefused:     "publish-refused",
	StreamEnded:        "stream-ended",
	PlayAccepted:       "play-accepted",
	PlayRefused:        "play-refused",
	PlayStopped:        "play-stopped",
	PlayerSkipped:      "player-skipped",
	PlayerDropped:      "player-dropped",
	ConnClosed:         "conn-closed",
	HandshakeFailed:    "handshake-failed",
	ReconnectRequested: "reconnect-requested",
}

func (k EventKind) String() string {
	if int(k) < len(eventNames) && eventNames[k] != "" {
		return eventNames[k]
	}
	return "unknown"
}

// Event is one change in a connection's life, reported to Server.Observer.
// Peer-controlled text in it is bounded (logging.Clip); a stream key never
// appears in it.
type Event struct {
	Kind     EventKind
	Session  uint64        // the connection's session id
	ClientIP netip.Addr    // the peer's address
	Channel  string        // from Connected on; validated, so short and plain
	StreamID string        // PublishAccepted, StreamEnded (and PublishRefused once approved): the publication's stream id, clipped
	Reason   string        // refusals, StreamEnded, PlayerDropped, ConnClosed: why, clipped
	Waiting  bool          // PlayAccepted: no publisher yet; the player waits for one
	Skips    uint64        // PlayerSkipped: skips to a keyframe since the last report
	Duration time.Duration // StreamEnded: how long the publication lasted
	TLS      bool          // HandshakeFailed: the TLS handshake failed, before the RTMP one

	// Details of a refusal or an end, for the request log (RequestLog).
	Limit           int    // ConnectRefused for too many connections from the address: the bound
	Hint            string // ConnectRefused: what the client should change (Reason ends with ": "+Hint)
	App             string // ConnectRefused for an invalid channel: the app, clipped (with a Hint: its first segment, then "/...")
	AppHiddenBytes  int    // ConnectRefused with a Hint: the app's bytes not shown in App
	Command         string // PublishRefused: the control command that refused it (kill-session, close-stream)
	Err             error  // PublishRefused by the start callback: its error
	ReplacedSession uint64 // PublishAccepted: the session of the silent publisher it replaced, if any
	HandshakeFailed bool   // ConnClosed: the RTMP handshake failed (Reason says what cut it short, if something did)
}

// observe reports ev for c to the server's Observer, if there is one,
// filling in what identifies the connection. It runs on c's goroutines and
// never under a lock.
func (c *conn) observe(ev Event) {
	o := c.srv.Observer
	if o == nil {
		return
	}
	ev.Session, ev.ClientIP = c.id, c.clientIP
	if ev.Channel == "" {
		ev.Channel = c.channel
	}
	o(ev)
}

// observeHandshakeFailure reports the failed handshake of c (err is what
// the handshake returned), unless the server itself ended the connection.
func (c *conn) observeHandshakeFailure(err error) {
	if c.srv.Observer == nil || c.reason() != nil {
		return
	}
	ev := Event{Kind: HandshakeFailed, Reason: HandshakeReasonInvalid}
	if tc, ok := c.nc.(*tls.Conn); ok && !tc.ConnectionState().HandshakeComplete {
		ev.TLS = true
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		ev.Reason = HandshakeReasonTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, net.ErrClosed):
		ev.Reason = HandshakeReasonClosed
	case errors.Is(err, handshake.ErrVersion):
		ev.Reason = HandshakeReasonBadVersion
	}
	c.observe(ev)
}
