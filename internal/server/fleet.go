package server

import (
	"context"
	"errors"

	"github.com/rtmp-server/rtmp-server/internal/amf"
	"github.com/rtmp-server/rtmp-server/internal/logging"
	"github.com/rtmp-server/rtmp-server/internal/message"
)

// Admission is asked, after the start callback approved a publish and
// before it goes live, whether it may go live on this server: a fleet of
// servers lets a channel be published on one of them at a time. Admit may
// block (it is bounded by its implementation and by ctx, which ends when
// the connection does); it is called without any lock held. On success it
// returns the function to call, exactly once, when the publication ends
// or is refused after all. Its error's text is told to the publisher and
// logged (clipped to maxReasonText).
type Admission interface {
	Admit(ctx context.Context, ev PublishEvent) (release func(), err error)
}

// admit asks the server's Admission, if there is one, about an approved
// publish. A refusal is sent to the peer, and the callback server, which
// approved the publish, gets its stop event; the error then ends the
// connection.
func (c *conn) admit(msgID uint32, key, streamID string, auth Authorizer) (release func(), err error) {
	a := c.srv.Admission
	if a == nil {
		return func() {}, nil
	}
	release, err = a.Admit(c.ctx, c.event(key, streamID))
	if err == nil {
		return release, nil
	}
	if auth != nil {
		auth.Stop(c.event(key, streamID))
	}
	reason := logging.ClipN(err.Error(), maxReasonText)
	if errors.Is(err, context.Canceled) {
		reason = "connection closed while the fleet was asked"
	}
	return nil, c.rejectPublish(msgID, "NetStream.Publish.BadName", reason, reason, Event{StreamID: logging.Clip(streamID)})
}

// capsExReconnect is CapsExMask.Reconnect (enhanced-rtmp-v2): the client
// handles NetConnection.Connect.ReconnectRequest.
const capsExReconnect = 0x01

// noteCapsEx records what the client's connect says in capsEx.
func (c *conn) noteCapsEx(obj amf.Object) {
	if caps, ok := obj.Number("capsEx"); ok && caps >= 0 && caps < 1<<32 {
		c.capsEx.Store(uint32(caps))
	}
}

// Reconnect requests: the status a draining server sends its publishers
// that can reconnect (Enhanced RTMP, "Reconnect Request"), so that they
// move to another server.
const (
	reconnectRequestCode        = "NetConnection.Connect.ReconnectRequest"
	reconnectRequestDescription = "Server draining: reconnect to publish on another server."
)

// RequestReconnect sends NetConnection.Connect.ReconnectRequest to every
// publisher whose connect announced the Reconnect capability in capsEx.
// Their sessions are not ended: a publisher reconnects when it chooses.
// It returns how many publishers were asked.
func (s *Server) RequestReconnect() int {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	n := 0
	for _, c := range conns {
		if c.capsEx.Load()&capsExReconnect == 0 || !s.hub.IsPublisher(c) {
			continue
		}
		c.send(message.Status(0, "status", reconnectRequestCode, reconnectRequestDescription))
		c.observe(Event{Kind: ReconnectRequested, Reason: drainReason})
		n++
	}
	return n
}
