package server

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/amf"
	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/client"
	"github.com/rtmp-server/rtmp-server/internal/message"
	"github.com/rtmp-server/rtmp-server/internal/session"
)

// TestAMF3Commands sends connect and publish as AMF3 command messages
// (type 17) and metadata as an AMF3 data message (type 15).
func TestAMF3Commands(t *testing.T) {
	ts := startServer(t, nil)
	c, err := client.Dial(ts.addr, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	send := func(typ uint8, streamID uint32, vals ...any) {
		t.Helper()
		p, err := amf.AppendAMF0All([]byte{0}, vals...)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.WriteMessage(&chunk.Message{ChunkStreamID: 3, Type: typ, StreamID: streamID, Payload: p}); err != nil {
			t.Fatal(err)
		}
	}
	send(message.TypeCommandAMF3, 0, "connect", 1.0, amf.Object{{Key: "app", Value: "live"}, {Key: "objectEncoding", Value: 3.0}})
	cmd, err := c.ReadCommand()
	if err != nil || cmd.Name != "_result" || cmd.StatusOf().Code != "NetConnection.Connect.Success" {
		t.Fatalf("connect: %+v %v", cmd, err)
	}
	if enc, _ := cmd.Values[1].(amf.Object).Number("objectEncoding"); enc != 3 {
		t.Fatalf("objectEncoding %v, want 3 echoed", enc)
	}
	send(message.TypeCommandAMF3, 0, "createStream", 2.0, nil)
	if cmd, err := c.ReadCommand(); err != nil || cmd.Name != "_result" {
		t.Fatalf("createStream: %+v %v", cmd, err)
	}
	send(message.TypeCommandAMF3, 1, "publish", 3.0, nil, "k", "live")
	if st, err := c.WaitStatus(); err != nil || st.Code != "NetStream.Publish.Start" {
		t.Fatalf("publish: %v %v", st, err)
	}
	send(message.TypeDataAMF3, 1, "@setDataFrame", "onMetaData", amf.ECMAArray{{Key: "width", Value: 640.0}})

	p := ts.dial(t, "live")
	if st, err := p.Play("k"); err != nil {
		t.Fatal(st, err)
	}
	got := readMedia(t, p, 1)
	vals, err := amf.DecodeAMF0All(got[0].Payload)
	if err != nil || len(vals) != 2 || vals[0] != "onMetaData" {
		t.Fatalf("metadata from AMF3 data message: %v %v", vals, err)
	}
}

func TestPingAndAcknowledgement(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.dial(t, "live")
	if st, err := c.Publish("k"); err != nil {
		t.Fatal(st, err)
	}
	// Ping request: the server answers with a ping response of the same value.
	ping := binary.BigEndian.AppendUint32([]byte{0, 6}, 0xCAFE)
	if err := c.WriteMessage(&chunk.Message{ChunkStreamID: 2, Type: message.TypeUserControl, Payload: ping}); err != nil {
		t.Fatal(err)
	}
	// Window acknowledgement size: after that many bytes the server acknowledges.
	win := binary.BigEndian.AppendUint32(nil, 1000)
	if err := c.WriteMessage(&chunk.Message{ChunkStreamID: 2, Type: message.TypeWindowAckSize, Payload: win}); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMedia(message.TypeAudio, 0, bytes.Repeat([]byte{0xAF}, 2000)); err != nil {
		t.Fatal(err)
	}
	var pong, ack bool
	for !pong || !ack {
		m, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("pong %v ack %v: %v", pong, ack, err)
		}
		switch {
		case m.Type == message.TypeUserControl && bytes.Equal(m.Payload, binary.BigEndian.AppendUint32([]byte{0, 7}, 0xCAFE)):
			pong = true
		case m.Type == message.TypeAck:
			if n := binary.BigEndian.Uint32(m.Payload); n < 1000 {
				t.Fatalf("acknowledged %d bytes", n)
			}
			ack = true
		}
	}
}

// TestExtendedTimestampsReachPlayers publishes across 0xFFFFFF (about
// 4 h 40 min of stream) and checks players get the same timestamps.
func TestExtendedTimestampsReachPlayers(t *testing.T) {
	ts := startServer(t, nil)
	pub := publish(t, ts, "live", "k")
	p := ts.dial(t, "live")
	if st, err := p.Play("k"); err != nil {
		t.Fatal(st, err)
	}
	big := append(keyframe(1), bytes.Repeat([]byte{1}, 1000)...) // several chunks: continuations carry the extended timestamp
	stamps := []uint32{0xFFFFF0, 0xFFFFFF, 0x1000010, 0xFFFFFFF0, 0x10}
	for _, s := range stamps {
		if err := pub.WriteMedia(message.TypeVideo, s, big); err != nil {
			t.Fatal(err)
		}
	}
	got := readMedia(t, p, len(stamps))
	for i, m := range got {
		if m.Timestamp != stamps[i] || !bytes.Equal(m.Payload, big) {
			t.Fatalf("message %d: timestamp %#x len %d, want %#x len %d", i, m.Timestamp, len(m.Payload), stamps[i], len(big))
		}
	}
}

// TestEnhancedRTMPVideo checks that HEVC in Enhanced RTMP is cached from its
// sequence start and keyframe, and forwarded untouched.
func TestEnhancedRTMPVideo(t *testing.T) {
	ts := startServer(t, nil)
	pub := publish(t, ts, "live", "k")
	seqStart := append([]byte{0x90}, "hvc1\x01\x02"...)
	key := append([]byte{0x91}, "hvc1\x00\x00\x00K"...)
	inter := append([]byte{0xA1}, "hvc1\x00\x00\x00P"...)
	for _, m := range []struct {
		ts uint32
		p  []byte
	}{{0, seqStart}, {0, inter}, {40, key}, {80, inter}} {
		if err := pub.WriteMedia(message.TypeVideo, m.ts, m.p); err != nil {
			t.Fatal(err)
		}
	}
	sync := ts.dial(t, "live")
	if st, err := sync.Play("k"); err != nil {
		t.Fatal(st, err)
	}
	readMedia(t, sync, 3)

	p := ts.dial(t, "live")
	if st, err := p.Play("k"); err != nil {
		t.Fatal(st, err)
	}
	got := readMedia(t, p, 3)
	for i, want := range [][]byte{seqStart, key, inter} {
		if !bytes.Equal(got[i].Payload, want) {
			t.Fatalf("message %d: % x, want % x", i, got[i].Payload, want)
		}
	}
}

func TestPauseAndReceiveVideo(t *testing.T) {
	ts := startServer(t, nil)
	pub := publish(t, ts, "live", "k")
	p := ts.dial(t, "live")
	if st, err := p.Play("k"); err != nil {
		t.Fatal(st, err)
	}
	if _, err := p.Call(p.StreamID(), "receiveVideo", nil, false); err != nil {
		t.Fatal(err)
	}
	// Synchronise on a round trip so the command is applied.
	if _, err := p.Call(0, "noSuchMethod", nil); err != nil {
		t.Fatal(err)
	}
	for {
		cmd, err := p.ReadCommand()
		if err != nil {
			t.Fatal(err)
		}
		if cmd.Name == "_error" {
			break
		}
	}
	if err := pub.WriteMedia(message.TypeVideo, 0, keyframe(1)); err != nil {
		t.Fatal(err)
	}
	if err := pub.WriteMedia(message.TypeAudio, 10, audioFrame(2)); err != nil {
		t.Fatal(err)
	}
	got := readMedia(t, p, 1)
	if got[0].Type != message.TypeAudio {
		t.Fatalf("receiveVideo false: got type %d first", got[0].Type)
	}

	if _, err := p.Call(p.StreamID(), "pause", nil, true, 0.0); err != nil {
		t.Fatal(err)
	}
	if st, err := p.WaitStatus(); err != nil || st.Code != "NetStream.Pause.Notify" {
		t.Fatalf("pause: %v %v", st, err)
	}
	if _, err := p.Call(p.StreamID(), "pause", nil, false, 0.0); err != nil {
		t.Fatal(err)
	}
	if st, err := p.WaitStatus(); err != nil || st.Code != "NetStream.Unpause.Notify" {
		t.Fatalf("unpause: %v %v", st, err)
	}
	if _, err := p.Call(p.StreamID(), "deleteStream", nil, float64(p.StreamID())); err != nil {
		t.Fatal(err)
	}
	if st, err := p.WaitStatus(); err != nil || st.Code != "NetStream.Play.Stop" {
		t.Fatalf("deleteStream: %v %v", st, err)
	}
	waitFor(t, "player removed", 5*time.Second, func() bool { return ts.Hub().Stats().Players == 0 })
}

// TestClientSessionFollowsTheServer checks the state a client's session
// keeps against what the server announced and answered: the chunk size
// and window of its connect, the stream createStream made, the publish.
func TestClientSessionFollowsTheServer(t *testing.T) {
	ts := startServer(t, func(c *Options) { c.ChunkSize = 1000 })
	c := ts.dial(t, "live")
	if st, err := c.Publish("k"); err != nil {
		t.Fatal(st, err)
	}
	st := c.State()
	if !st.Connected || st.App != "live" || st.LastStreamID != 1 || st.Publishing == nil || *st.Publishing != (session.Stream{ID: 1, Name: "k"}) {
		t.Fatalf("client session state %+v", st)
	}
	if st.In.ChunkSize != 1000 || st.PeerWindowAckSize != session.WindowAckSize || st.OutChunkSize != chunk.DefaultChunkSize {
		t.Fatalf("chunk sizes and window: %+v", st)
	}
}
