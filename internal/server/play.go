package server

import (
	"errors"

	"github.com/rtmp-server/rtmp-server/internal/hub"
	"github.com/rtmp-server/rtmp-server/internal/message"
)

// player is the playing role of a connection; owned by its read loop. Its
// event methods are called by the hub and only queue messages.
type player struct {
	c           *conn
	streamMsgID uint32
	player      *hub.Player
}

func (p *player) Accepted() {
	id := p.streamMsgID
	p.c.send(message.UserControl{Event: message.EventStreamBegin, Value: id})
	p.c.send(message.Status(id, "status", "NetStream.Play.Reset", "Playing and resetting stream."))
	p.c.send(message.Status(id, "status", "NetStream.Play.Start", "Started playing stream."))
	p.c.send(message.DataValues(id, "|RtmpSampleAccess", false, false))
}

func (p *player) PublishStarted() {
	p.c.send(message.UserControl{Event: message.EventStreamBegin, Value: p.streamMsgID})
	p.c.send(message.Status(p.streamMsgID, "status", "NetStream.Play.PublishNotify", "Stream is now published."))
}

func (p *player) Unpublished() {
	p.c.send(message.UserControl{Event: message.EventStreamEOF, Value: p.streamMsgID})
	p.c.send(message.Status(p.streamMsgID, "status", "NetStream.Play.UnpublishNotify", "Stream is now unpublished."))
}

func (p *player) Rejected(err error) {
	p.c.send(message.Status(p.streamMsgID, "error", "NetStream.Play.BadName", "Invalid stream key provided"))
	p.c.Kick(errRejected{"stream key does not match the new publisher"})
}

func (c *conn) rejectPlay(msgStreamID uint32, description, reason string) error {
	c.send(message.Status(msgStreamID, "error", "NetStream.Play.BadName", description))
	c.observe(Event{Kind: PlayRefused, Reason: reason})
	return errRejected{reason}
}

func (c *conn) onPlay(cmd *message.Command) error {
	opts := c.srv.options()
	key, query := splitName(cmd.ArgString(0))
	msgID := cmd.StreamID
	switch {
	case c.play != nil:
		c.send(message.Status(msgID, "error", "NetStream.Play.BadConnection", "Connection already playing"))
		return nil
	case !validID(key, opts.IDMaxLength):
		return c.rejectPlay(msgID, "Invalid stream key provided", "invalid stream key")
	case !opts.PlayWhitelist.Contains(c.clientIP):
		return c.rejectPlay(msgID, "Your net address is not whitelisted for playing", "address not in RTMP_PLAY_WHITELIST")
	}
	p := &player{c: c, streamMsgID: msgID}
	p.player = hub.NewPlayer(c.id, key, c.queue, p)
	p.player.Addr = c.clientIP
	switch query.Get("cache") {
	case "no":
		p.player.NoCache = true
	case "clear":
		p.player.ClearCache = true
	}
	c.playID.Store(msgID)
	c.playing.Store(true)
	waiting, err := c.srv.hub.Play(c.channel, p.player)
	if err != nil {
		c.playing.Store(false)
		if errors.Is(err, hub.ErrBadKey) {
			return c.rejectPlay(msgID, "Invalid stream key provided", "stream key does not match the publisher's")
		}
		return c.rejectPlay(msgID, "Server shutting down", "server shutting down")
	}
	c.play = p
	c.session.Play(msgID, key)
	c.observe(Event{Kind: PlayAccepted, Waiting: waiting})
	return nil
}

func (c *conn) stopPlaying() {
	c.srv.hub.StopPlaying(c.play.player)
	c.play = nil
	c.session.EndPlay()
	c.playing.Store(false)
	c.observe(Event{Kind: PlayStopped})
}

func (c *conn) onPause(cmd *message.Command) {
	if c.play == nil {
		return
	}
	paused := cmd.ArgBool(0)
	c.play.player.SetPaused(paused)
	id := c.play.streamMsgID
	if paused {
		c.send(message.UserControl{Event: message.EventStreamEOF, Value: id})
		c.send(message.Status(id, "status", "NetStream.Pause.Notify", "Paused live"))
		return
	}
	c.send(message.UserControl{Event: message.EventStreamBegin, Value: id})
	c.send(message.Status(id, "status", "NetStream.Unpause.Notify", "Unpaused live"))
}
