package server

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/rtmp-server/rtmp-server/internal/amf"
	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/logging"
	"github.com/rtmp-server/rtmp-server/internal/message"
)

// An app of more than one path segment is refused with this hint: encoders
// that put the stream key in the server URL send "live/KEY" as the app.
const (
	multiSegmentHint        = "the URL has more than one path segment: put the key in the stream key field"
	multiSegmentDescription = "Invalid channel: the URL has more than one path segment; " +
		"put the stream key in the stream key field, not in the server URL (rtmp://host/CHANNEL, key KEY; or rtmp://host/CHANNEL/KEY)."
)

// Reasons of connect refusals.
const (
	reasonOverIPLimit    = "too many connections from this address"
	reasonInvalidChannel = "invalid channel"
)

// errRejected ends a connection after a refusal was sent to the peer.
type errRejected struct{ reason string }

func (e errRejected) Error() string { return "rejected: " + e.reason }

// validID reports whether s is a valid CHANNEL or KEY: [A-Za-z0-9_-]{1,max}.
func validID(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '-') {
			return false
		}
	}
	return true
}

// splitName splits "key?a=b" into the key and its query parameters.
func splitName(name string) (string, url.Values) {
	key, query, _ := strings.Cut(name, "?")
	v, _ := url.ParseQuery(query)
	return key, v
}

// handleMessage handles one message of the peer, in the roles of the
// connection; the session has applied what the protocol says about it.
func (c *conn) handleMessage(msg message.Message) error {
	m := msg.Chunk()
	switch msg := msg.(type) {
	case message.WindowAckSize, message.UserControl:
		// Applied by the session: acknowledgements, ping responses.
	case *message.Media:
		// Media is taken on whatever message stream it arrives: some
		// encoders do not use the one they published on.
		if c.pub != nil {
			c.pub.write(m.Type, m.Timestamp, m.Payload, false)
		}
	case *message.Data:
		if m.Type == message.TypeDataAMF0 || len(m.Payload) > 0 {
			return c.handleData(m, msg.Body())
		}
	case *message.Command:
		return c.handleCommand(msg)
	case *message.Aggregate:
		return msg.Each(c.handleSubMessage)
	default:
		c.log.Debug("ignored message", "type", m.Type, "len", len(m.Payload))
	}
	return nil
}

// handleSubMessage handles an audio, video or data message of an aggregate.
func (c *conn) handleSubMessage(m *chunk.Message) error {
	msg, err := message.Decode(m)
	if err != nil {
		return err
	}
	return c.handleMessage(msg)
}

// handleData handles data messages: @setDataFrame/onMetaData become the
// stream's metadata; other data messages are forwarded to players.
func (c *conn) handleData(m *chunk.Message, body []byte) error {
	if c.pub == nil {
		return nil
	}
	name, n, err := amf.DecodeAMF0(body)
	if err != nil {
		c.log.Debug("ignored undecodable data message", "err", err)
		return nil
	}
	switch name {
	case "@setDataFrame":
		// Players receive "onMetaData", {...}: the name is stripped.
		c.pub.write(message.TypeDataAMF0, m.Timestamp, body[n:], true)
	case "onMetaData":
		c.pub.write(message.TypeDataAMF0, m.Timestamp, body, true)
	default:
		c.pub.write(message.TypeDataAMF0, m.Timestamp, body, false)
	}
	return nil
}

func (c *conn) handleCommand(cmd *message.Command) error {
	name := cmd.Name
	c.log.Debug("command", "name", logging.Clip(name), "txn", cmd.Txn, "stream", cmd.StreamID)

	if !c.session.Connected() && name != "connect" {
		return fmt.Errorf("%s before connect", logging.Quote(name))
	}
	switch name {
	case "connect":
		return c.onConnect(cmd)
	case "createStream":
		_, _ = c.session.CreateStream(cmd.Txn) // the session's sender does not fail
	case "releaseStream", "FCPublish", "FCUnpublish", "FCUnsubscribe":
		if cmd.Txn != 0 {
			c.send(message.Result(cmd.Txn, nil, amf.Undefined{}))
		}
	case "FCSubscribe", "getStreamLength":
		c.onPlayerQuery(cmd)
	case "publish":
		return c.onPublish(cmd)
	case "play":
		return c.onPlay(cmd)
	case "pause":
		c.onPause(cmd)
	case "deleteStream":
		if id, ok := cmd.ArgNumber(0); ok {
			c.deleteStream(uint32(id))
		} else if name, ok := cmd.Arg(0).(string); ok {
			c.deleteStreamNamed(name)
		}
	case "closeStream":
		if name, ok := cmd.Arg(0).(string); ok && cmd.StreamID == 0 {
			c.deleteStreamNamed(name)
		} else {
			c.deleteStream(cmd.StreamID)
		}
	case "receiveAudio":
		if c.play != nil {
			c.play.player.SetReceiveAudio(cmd.ArgBool(0))
		}
	case "receiveVideo":
		if c.play != nil {
			c.play.player.SetReceiveVideo(cmd.ArgBool(0))
		}
	case "_result", "_error", "onStatus", "onBWDone", "_checkbw":
		// Replies and notifications that need no answer.
	default:
		if cmd.Txn != 0 {
			c.send(message.Error(cmd.Txn, "NetConnection.Call.Failed", fmt.Sprintf("Method not found (%.64s).", name)))
		}
		c.log.Debug("unknown command")
	}
	return nil
}

func (c *conn) onConnect(cmd *message.Command) error {
	if c.session.Connected() {
		c.send(message.Error(cmd.Txn, "NetConnection.Connect.Rejected", "Already connected."))
		return nil
	}
	obj, _ := cmd.Object().(amf.Object)
	if arr, ok := cmd.Object().(amf.ECMAArray); ok {
		obj = amf.Object(arr)
	}
	app := obj.String("app")
	channel, _, _ := strings.Cut(app, "?")
	channel = strings.TrimSuffix(channel, "/")
	opts := c.srv.options()
	switch {
	case c.overIP:
		c.send(message.Error(cmd.Txn, "NetConnection.Connect.Rejected", "Too many connections from your address."))
		c.observe(Event{Kind: ConnectRefused, Reason: reasonOverIPLimit, Limit: opts.MaxIPConnections})
		return errRejected{reasonOverIPLimit}
	case c.srv.Draining() == DrainConnections:
		c.send(message.Error(cmd.Txn, "NetConnection.Connect.Rejected", drainConnectDescription))
		c.observe(Event{Kind: ConnectRefused, Reason: drainReason})
		return errRejected{drainReason}
	case strings.Contains(channel, "/"):
		// Most likely an encoder with the stream key in its server URL
		// (rtmp://host/live/KEY): what follows the first '/' is never logged.
		first, _, _ := strings.Cut(channel, "/")
		c.send(message.Error(cmd.Txn, "NetConnection.Connect.Rejected", multiSegmentDescription))
		c.observe(Event{Kind: ConnectRefused, Reason: reasonInvalidChannel + ": " + multiSegmentHint, Hint: multiSegmentHint,
			App: logging.Clip(first) + "/...", AppHiddenBytes: len(app) - len(first) - 1})
		return errRejected{reasonInvalidChannel}
	case !validID(channel, opts.IDMaxLength):
		// The query (app?a=b) may hold a token: only the channel is logged.
		c.send(message.Error(cmd.Txn, "NetConnection.Connect.Rejected", "Invalid channel."))
		c.observe(Event{Kind: ConnectRefused, Reason: reasonInvalidChannel, App: logging.Clip(channel)})
		return errRejected{reasonInvalidChannel}
	}
	c.srv.connected(c)
	c.channel, c.flashVer = channel, obj.String("flashVer")
	c.noteCapsEx(obj)
	c.log = c.log.With("channel", channel)

	var info amf.Object
	if encoding, ok := obj.Number("objectEncoding"); ok {
		info = amf.Object{{Key: "objectEncoding", Value: encoding}}
	}
	properties := append(amf.Object{
		{Key: "fmsVer", Value: serverFMSVersion},
		{Key: "capabilities", Value: float64(serverCapabilites)},
	}, enhancedRTMPProperties()...)
	_ = c.session.AcceptConnect(channel, cmd.Txn, uint32(c.opts.ChunkSize), properties, info) // connected, and the sender does not fail
	c.observe(Event{Kind: Connected})
	return nil
}

// onPlayerQuery answers what players ask before or besides play, the way
// Flash Media Server did, so that they report no error:
//   - FCSubscribe (rtmpdump, ffmpeg with -rtmp_live live, CDN-era Flash
//     players) gets onFCSubscribe with NetStream.Play.Start: a live stream
//     can always be subscribed to; play decides whether it may be watched.
//   - getStreamLength (ffmpeg, and VLC through it) gets the length in
//     seconds, 0 for a live stream.
func (c *conn) onPlayerQuery(cmd *message.Command) {
	switch cmd.Name {
	case "FCSubscribe":
		c.send(&message.Command{Name: "onFCSubscribe", Values: []any{nil, amf.Object{
			{Key: "level", Value: "status"},
			{Key: "code", Value: "NetStream.Play.Start"},
			{Key: "description", Value: "Subscribed."},
		}}})
		if cmd.Txn != 0 {
			c.send(message.Result(cmd.Txn, nil, amf.Undefined{}))
		}
	case "getStreamLength":
		if cmd.Txn != 0 {
			c.send(message.Result(cmd.Txn, nil, 0.0))
		}
	}
}

// deleteStreamNamed ends the publication that a deleteStream or closeStream
// names by its stream name (the key, with any query) instead of its message
// stream ID, as GStreamer's rtmp2sink sends them on message stream 0.
func (c *conn) deleteStreamNamed(name string) {
	if key, _ := splitName(name); c.pub != nil && key == c.pub.key {
		c.deleteStream(c.pub.streamMsgID)
	}
}

func (c *conn) deleteStream(id uint32) {
	if c.play != nil && c.play.streamMsgID == id {
		c.stopPlaying()
		c.send(message.Status(id, "status", "NetStream.Play.Stop", "Stopped playing stream."))
	}
	if c.pub != nil && c.pub.streamMsgID == id {
		c.endPublish("deleteStream")
	}
}

// cleanup ends the roles when the connection ends.
func (c *conn) cleanup() {
	if c.play != nil {
		c.stopPlaying()
	}
	if c.pub != nil {
		reason := "connection closed"
		if r := c.reason(); r != nil {
			reason = r.Error()
		}
		c.endPublish(reason)
	}
}
