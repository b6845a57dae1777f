package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/hub"
	"github.com/rtmp-server/rtmp-server/internal/logging"
	"github.com/rtmp-server/rtmp-server/internal/message"
)

// PublishEvent describes a publication for the Authorizer.
type PublishEvent struct {
	Session  uint64
	Channel  string
	Key      string
	ClientIP string
	StreamID string // empty for Start
}

// Authorizer approves publications and hears when they end (the event
// callbacks). Start may block; it is called without any lock held and only
// delays the publisher asking. Stop must not block.
type Authorizer interface {
	Start(ctx context.Context, ev PublishEvent) (streamID string, err error)
	Stop(ev PublishEvent)
}

// publisher is the publishing role of a connection; owned by its read loop.
type publisher struct {
	streamMsgID uint32
	key         string
	streamID    string
	pub         *hub.Publication
	auth        Authorizer // the authorizer that approved it, told at the end
	release     func()     // the Admission's, called at the end
	started     time.Time
	forwardURLs []string // the start callback's forward targets (kept for a hand-over)
}

func (p *publisher) write(typ uint8, ts uint32, payload []byte, metadata bool) {
	p.pub.Write(typ, ts, payload, metadata)
}

func (c *conn) event(key, streamID string) PublishEvent {
	return PublishEvent{Session: c.id, Channel: c.channel, Key: key, ClientIP: c.ip, StreamID: streamID}
}

// keyFormat says what a valid stream key is made of, for the encoder and
// the log.
func keyFormat(max int) string {
	return fmt.Sprintf("1 to %d characters a-z A-Z 0-9 - _", max)
}

// rejectPublish tells the peer and ends the connection. detail, if given,
// carries what the request log says besides the reason.
func (c *conn) rejectPublish(msgStreamID uint32, code, description, reason string, detail ...Event) error {
	c.send(message.Status(msgStreamID, "error", code, description))
	ev := Event{}
	if len(detail) > 0 {
		ev = detail[0]
	}
	ev.Kind, ev.Reason = PublishRefused, reason
	c.observe(ev)
	return errRejected{reason}
}

func (c *conn) onPublish(cmd *message.Command) error {
	srvOpts := c.srv.options()
	key, _ := splitName(cmd.ArgString(0))
	msgID := cmd.StreamID
	switch {
	case c.pub != nil:
		c.send(message.Status(msgID, "error", "NetStream.Publish.BadConnection", "Connection already publishing"))
		return nil
	case !validID(key, srvOpts.IDMaxLength):
		return c.rejectPublish(msgID, "NetStream.Publish.BadName", "Invalid stream key provided: "+keyFormat(srvOpts.IDMaxLength),
			"invalid stream key: want "+keyFormat(srvOpts.IDMaxLength))
	case c.srv.Draining() != DrainOff:
		return c.rejectPublish(msgID, "NetStream.Publish.BadName", drainPublishDescription, drainReason)
	}
	opts := hub.PublishOptions{
		ChunkSize:     uint32(srvOpts.ChunkSize),
		GOPCacheBytes: srvOpts.GOPCacheBytes,
		StaleAfter:    c.srv.PublisherStaleAfter,
	}
	h := c.srv.hub
	waiting := c.srv.waiting.add(c.channel)
	defer c.srv.waiting.remove(waiting)
	c.waitForStalePublisher(key)
	if err := h.CheckPublish(c.channel, key, opts); err != nil {
		return c.rejectPublish(msgID, "NetStream.Publish.BadName", "Stream already publishing", "stream already publishing")
	}

	if c.srv.waiting.killed(waiting) {
		// Killed while it waited for a stale publisher: no start to send.
		return c.rejectPublish(msgID, "NetStream.Publish.BadName", "Stream closed by a control command",
			errKilled.Error()+" before going live", Event{Command: "kill-session"})
	}

	streamID := ""
	var forwardURLs []string
	auth := c.srv.authorizer()
	if auth != nil {
		id, urls, err := startPublish(c.ctx, auth, c.event(key, ""))
		if err != nil {
			return c.rejectPublish(msgID, "NetStream.Publish.BadName", "Invalid stream key provided", "callback refused", Event{Err: err})
		}
		streamID, forwardURLs = id, urls
	} else {
		streamID = rand.Text()
	}
	release, err := c.admit(msgID, key, streamID, auth)
	if err != nil {
		return err
	}

	var pub, replaced *hub.Publication
	refusedBy := c.srv.waiting.goLive(waiting, streamID, func() {
		pub, replaced, err = h.Publish(c.channel, key, streamID, c, opts)
	})
	if refusedBy != "" {
		release()
		if auth != nil {
			// Approved, then refused: the callback server saw a start.
			auth.Stop(c.event(key, streamID))
		}
		return c.rejectPublish(msgID, "NetStream.Publish.BadName", "Stream closed by a control command",
			errKilled.Error()+" before going live", Event{Command: refusedBy, StreamID: logging.Clip(streamID)})
	}
	if err != nil {
		release()
		if auth != nil {
			// Approved but lost the race: the callback server saw a start.
			auth.Stop(c.event(key, streamID))
		}
		reason := "stream already publishing"
		if errors.Is(err, hub.ErrClosed) {
			reason = "server shutting down"
		}
		return c.rejectPublish(msgID, "NetStream.Publish.BadName", "Stream already publishing", reason, Event{StreamID: logging.Clip(streamID)})
	}
	if c.raw != nil && c.ingest == nil {
		c.ingest = newIngestReader(c.raw, &c.srv.ingest)
		c.reader.Rebuffer(c.ingest, publishBufferSize)
	} else if c.raw == nil {
		c.reader.Rebuffer(c.nc, publishBufferSize)
	}
	c.pub = &publisher{streamMsgID: msgID, key: key, streamID: streamID, pub: pub, auth: auth, release: release, started: time.Now(), forwardURLs: forwardURLs}
	c.session.Publish(msgID, key)
	c.srv.forwardStarted(pub, replaced, forwardURLs)
	c.send(message.UserControl{Event: message.EventStreamBegin, Value: msgID})
	c.send(message.Status(msgID, "status", "NetStream.Publish.Start", "/"+c.channel+"/"+key+" is now published."))
	ev := Event{Kind: PublishAccepted, StreamID: logging.Clip(streamID)}
	if replaced != nil {
		ev.ReplacedSession = replaced.SessionID()
	}
	c.observe(ev)
	return nil
}

// waitForStalePublisher gives a reconnecting encoder's old, silent session
// the time left until it counts as stale, so the new publish can replace it
// instead of being refused.
func (c *conn) waitForStalePublisher(key string) {
	old := c.srv.hub.Lookup(c.channel)
	if old == nil || !old.HasKey(key) {
		return
	}
	staleAfter := c.srv.PublisherStaleAfter
	wait := staleAfter - old.Idle()
	if wait <= 0 || wait > staleAfter {
		return
	}
	t := time.NewTimer(wait + 50*time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.ctx.Done():
	}
}

// endPublish ends the publication, tells players and the callback server.
func (c *conn) endPublish(reason string) {
	p := c.pub
	c.pub = nil
	c.session.EndPublish()
	c.srv.forwardEnded(p.pub, !c.srv.hub.Unpublish(p.pub) && p.pub.Ended())
	if p.release != nil {
		p.release()
	}
	if p.auth != nil {
		p.auth.Stop(c.event(p.key, p.streamID))
	}
	c.send(message.Status(p.streamMsgID, "status", "NetStream.Unpublish.Success", "/"+c.channel+"/"+p.key+" is now unpublished."))
	c.observe(Event{Kind: StreamEnded, StreamID: logging.Clip(p.streamID), Reason: logging.ClipN(reason, maxReasonText), Duration: time.Since(p.started)})
}
