package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/rtmp-server/rtmp-server/internal/amf"
	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/logging"
)

// maxCommandName is the longest command name accepted, in bytes; a longer
// one is malformed (RTMP's command names are a few words long).
const maxCommandName = 256

// An app of more than one path segment is refused with this hint: encoders
// that put the stream key in the server URL send "live/KEY" as the app.
const (
	multiSegmentHint        = "the URL has more than one path segment: put the key in the stream key field"
	multiSegmentDescription = "Invalid channel: the URL has more than one path segment; " +
		"put the stream key in the stream key field, not in the server URL (rtmp://host/CHANNEL, key KEY; or rtmp://host/CHANNEL/KEY)."
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

func (c *conn) handleMessage(m *chunk.Message) error {
	switch m.Type {
	case chunk.TypeWindowAckSize:
		if len(m.Payload) >= 4 {
			c.ackWindow = binary.BigEndian.Uint32(m.Payload)
		}
	case chunk.TypeUserControl:
		c.handleUserControl(m.Payload)
	case chunk.TypeAudio, chunk.TypeVideo:
		// Media is taken on whatever message stream it arrives: some
		// encoders do not use the one they published on.
		if c.pub != nil {
			c.pub.write(m.Type, m.Timestamp, m.Payload, false)
		}
	case chunk.TypeDataAMF0:
		return c.handleData(m, m.Payload)
	case chunk.TypeDataAMF3:
		if len(m.Payload) > 0 {
			return c.handleData(m, m.Payload[1:])
		}
	case chunk.TypeCommandAMF0:
		return c.handleCommand(m, m.Payload)
	case chunk.TypeCommandAMF3:
		if len(m.Payload) > 0 {
			return c.handleCommand(m, m.Payload[1:])
		}
	case chunk.TypeAggregate:
		return c.handleAggregate(m)
	default:
		c.log.Debug("ignored message", "type", m.Type, "len", len(m.Payload))
	}
	return nil
}

func (c *conn) handleUserControl(p []byte) {
	if len(p) < 2 {
		return
	}
	switch binary.BigEndian.Uint16(p) {
	case eventPingRequest:
		if len(p) >= 6 {
			c.send(userControlMessage(eventPingResponse, binary.BigEndian.Uint32(p[2:])))
		}
	}
}

// Aggregate message sub-message header: type(1) size(3) timestamp(3+1) stream ID(3).
const aggregateHeaderLen = 11

// handleAggregate splits an aggregate message into its audio/video/data
// messages, rebasing their timestamps on the aggregate's.
func (c *conn) handleAggregate(m *chunk.Message) error {
	p := m.Payload
	var base uint32
	first := true
	for len(p) > 0 {
		if len(p) < aggregateHeaderLen {
			return fmt.Errorf("aggregate message: truncated sub-message header")
		}
		typ := p[0]
		size := int(p[1])<<16 | int(p[2])<<8 | int(p[3])
		ts := uint32(p[4])<<16 | uint32(p[5])<<8 | uint32(p[6]) | uint32(p[7])<<24
		if len(p) < aggregateHeaderLen+size+4 {
			return fmt.Errorf("aggregate message: sub-message of %d bytes overruns the message", size)
		}
		if first {
			base, first = ts, false
		}
		sub := &chunk.Message{ChunkStreamID: m.ChunkStreamID, Timestamp: m.Timestamp + (ts - base), Type: typ, StreamID: m.StreamID,
			Payload: p[aggregateHeaderLen : aggregateHeaderLen+size]}
		switch typ {
		case chunk.TypeAudio, chunk.TypeVideo, chunk.TypeDataAMF0:
			if err := c.handleMessage(sub); err != nil {
				return err
			}
		}
		p = p[aggregateHeaderLen+size+4:]
	}
	return nil
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
		c.pub.write(chunk.TypeDataAMF0, m.Timestamp, body[n:], true)
	case "onMetaData":
		c.pub.write(chunk.TypeDataAMF0, m.Timestamp, body, true)
	default:
		c.pub.write(chunk.TypeDataAMF0, m.Timestamp, body, false)
	}
	return nil
}

// command is a decoded command message.
type command struct {
	name     string
	txn      float64
	object   any
	args     []any
	streamID uint32 // message stream ID it arrived on
}

func (cmd *command) arg(i int) any {
	if i < len(cmd.args) {
		return cmd.args[i]
	}
	return nil
}

func (cmd *command) argString(i int) string {
	s, _ := cmd.arg(i).(string)
	return s
}

func (cmd *command) argBool(i int) bool {
	switch v := cmd.arg(i).(type) {
	case bool:
		return v
	case float64:
		return v != 0
	}
	return false
}

func (cmd *command) argNumber(i int) (float64, bool) {
	f, ok := cmd.arg(i).(float64)
	return f, ok
}

func (c *conn) handleCommand(m *chunk.Message, body []byte) error {
	vals, err := amf.DecodeAMF0All(body)
	if err != nil {
		return fmt.Errorf("malformed command message: %w", err)
	}
	if len(vals) == 0 {
		return errors.New("malformed command message: empty")
	}
	name, ok := vals[0].(string)
	if !ok {
		return fmt.Errorf("malformed command message: name is %T, not a string", vals[0])
	}
	if len(name) > maxCommandName {
		return fmt.Errorf("malformed command message: name of %d bytes (at most %d)", len(name), maxCommandName)
	}
	cmd := &command{name: name, streamID: m.StreamID}
	if len(vals) > 1 {
		cmd.txn, _ = vals[1].(float64)
	}
	if len(vals) > 2 {
		cmd.object = vals[2]
	}
	if len(vals) > 3 {
		cmd.args = vals[3:]
	}
	c.log.Debug("command", "name", logging.Clip(name), "txn", cmd.txn, "stream", m.StreamID)

	if !c.connected && name != "connect" {
		return fmt.Errorf("%s before connect", logging.Quote(name))
	}
	switch name {
	case "connect":
		return c.onConnect(cmd)
	case "createStream":
		c.nextStreamID++
		c.send(resultMessage(cmd.txn, nil, float64(c.nextStreamID)))
	case "releaseStream", "FCPublish", "FCUnpublish", "FCUnsubscribe":
		if cmd.txn != 0 {
			c.send(resultMessage(cmd.txn, nil, amf.Undefined{}))
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
		if id, ok := cmd.argNumber(0); ok {
			c.deleteStream(uint32(id))
		} else if name, ok := cmd.arg(0).(string); ok {
			c.deleteStreamNamed(name)
		}
	case "closeStream":
		if name, ok := cmd.arg(0).(string); ok && cmd.streamID == 0 {
			c.deleteStreamNamed(name)
		} else {
			c.deleteStream(cmd.streamID)
		}
	case "receiveAudio":
		if c.play != nil {
			c.play.player.SetReceiveAudio(cmd.argBool(0))
		}
	case "receiveVideo":
		if c.play != nil {
			c.play.player.SetReceiveVideo(cmd.argBool(0))
		}
	case "_result", "_error", "onStatus", "onBWDone", "_checkbw":
		// Replies and notifications that need no answer.
	default:
		if cmd.txn != 0 {
			c.send(errorMessage(cmd.txn, "NetConnection.Call.Failed", fmt.Sprintf("Method not found (%.64s).", name)))
		}
		c.log.Debug("unknown command")
	}
	return nil
}

func (c *conn) onConnect(cmd *command) error {
	if c.connected {
		c.send(errorMessage(cmd.txn, "NetConnection.Connect.Rejected", "Already connected."))
		return nil
	}
	obj, _ := cmd.object.(amf.Object)
	if arr, ok := cmd.object.(amf.ECMAArray); ok {
		obj = amf.Object(arr)
	}
	app := obj.String("app")
	channel, _, _ := strings.Cut(app, "?")
	channel = strings.TrimSuffix(channel, "/")
	opts := c.srv.options()
	switch {
	case c.overIP:
		c.logRequest("rejected", "reason", "too many connections from this address", "limit", opts.MaxIPConnections)
		c.send(errorMessage(cmd.txn, "NetConnection.Connect.Rejected", "Too many connections from your address."))
		c.observe(Event{Kind: ConnectRefused, Reason: "too many connections from this address"})
		return errRejected{"too many connections from this address"}
	case c.srv.Draining() == DrainConnections:
		c.logRequest("rejected", "reason", drainReason)
		c.send(errorMessage(cmd.txn, "NetConnection.Connect.Rejected", drainConnectDescription))
		c.observe(Event{Kind: ConnectRefused, Reason: drainReason})
		return errRejected{drainReason}
	case strings.Contains(channel, "/"):
		// Most likely an encoder with the stream key in its server URL
		// (rtmp://host/live/KEY): what follows the first '/' is never logged.
		first, _, _ := strings.Cut(channel, "/")
		c.logRequest("rejected", "reason", "invalid channel", "hint", multiSegmentHint,
			"app", logging.Clip(first)+"/...", "app_hidden_bytes", len(app)-len(first)-1)
		c.send(errorMessage(cmd.txn, "NetConnection.Connect.Rejected", multiSegmentDescription))
		c.observe(Event{Kind: ConnectRefused, Reason: "invalid channel: " + multiSegmentHint})
		return errRejected{"invalid channel"}
	case !validID(channel, opts.IDMaxLength):
		// The query (app?a=b) may hold a token: only the channel is logged.
		c.logRequest("rejected", "reason", "invalid channel", "app", logging.Clip(channel))
		c.send(errorMessage(cmd.txn, "NetConnection.Connect.Rejected", "Invalid channel."))
		c.observe(Event{Kind: ConnectRefused, Reason: "invalid channel"})
		return errRejected{"invalid channel"}
	}
	c.connected = true
	c.srv.connected(c)
	c.channel = channel
	c.log = c.log.With("channel", channel)

	encoding, hasEncoding := obj.Number("objectEncoding")
	c.send(windowAckSizeMessage(windowAckSize))
	c.send(peerBandwidthMessage(peerBandwidth, peerBandwidthDyn))
	c.send(setChunkSizeMessage(uint32(c.opts.ChunkSize)))
	info := amf.Object{
		{Key: "level", Value: "status"},
		{Key: "code", Value: "NetConnection.Connect.Success"},
		{Key: "description", Value: "Connection succeeded."},
	}
	if hasEncoding {
		info = append(info, amf.Property{Key: "objectEncoding", Value: encoding})
	}
	c.send(resultMessage(cmd.txn, append(amf.Object{
		{Key: "fmsVer", Value: serverFMSVersion},
		{Key: "capabilities", Value: float64(serverCapabilites)},
	}, enhancedRTMPProperties()...), info))
	c.logRequest("connect")
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
func (c *conn) onPlayerQuery(cmd *command) {
	switch cmd.name {
	case "FCSubscribe":
		c.send(commandMessage(0, "onFCSubscribe", 0.0, nil, amf.Object{
			{Key: "level", Value: "status"},
			{Key: "code", Value: "NetStream.Play.Start"},
			{Key: "description", Value: "Subscribed."},
		}))
		if cmd.txn != 0 {
			c.send(resultMessage(cmd.txn, nil, amf.Undefined{}))
		}
	case "getStreamLength":
		if cmd.txn != 0 {
			c.send(resultMessage(cmd.txn, nil, 0.0))
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
		c.send(statusMessage(id, "status", "NetStream.Play.Stop", "Stopped playing stream."))
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
