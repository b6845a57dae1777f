package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/amf"
	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/client"
	"github.com/rtmp-server/rtmp-server/internal/message"
)

// playerEnd reads a player's connection until the server closes it and
// reports, in order, the end-of-stream signals it got: "StreamEOF" (the
// user control event for the played stream) and the onStatus codes.
func playerEnd(c *client.Conn, streamID uint32) ([]string, error) {
	if err := c.SetDeadline(time.Now().Add(15 * time.Second)); err != nil {
		return nil, err
	}
	var got []string
	for {
		m, err := c.ReadMessage()
		if err != nil {
			return got, err
		}
		switch m.Type {
		case message.TypeUserControl:
			if len(m.Payload) >= 6 && binary.BigEndian.Uint16(m.Payload) == message.EventStreamEOF &&
				binary.BigEndian.Uint32(m.Payload[2:]) == streamID {
				got = append(got, "StreamEOF")
			}
		case message.TypeCommandAMF0:
			vals, err := amf.DecodeAMF0All(m.Payload)
			if err != nil || len(vals) < 4 || vals[0] != "onStatus" {
				continue
			}
			if info, ok := vals[3].(amf.Object); ok {
				got = append(got, info.String("code"))
			}
		}
	}
}

// TestShutdownEndsPublishersFirst: Shutdown ends the publishers before
// the other connections, so that a player gets the end of the stream
// (StreamEOF, then NetStream.Play.UnpublishNotify) before its connection
// is closed.
func TestShutdownEndsPublishersFirst(t *testing.T) {
	ts := startServer(t, nil)
	pub := publish(t, ts, "live", "k")
	players := make([]*client.Conn, 3)
	for i := range players {
		players[i] = ts.dial(t, "live")
		st, err := players[i].Play("k")
		expectStatus(t, st, err, "NetStream.Play.Start")
	}
	for _, payload := range [][]byte{videoHeader, keyframe(1)} {
		if err := pub.WriteMedia(message.TypeVideo, 0, payload); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range players {
		readMedia(t, p, 2)
	}

	type result struct {
		got []string
		err error
	}
	results := make([]chan result, len(players))
	for i, p := range players {
		results[i] = make(chan result, 1)
		go func() {
			got, err := playerEnd(p, p.StreamID())
			results[i] <- result{got, err}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for i, r := range results {
		res := <-r
		if errors.Is(res.err, context.DeadlineExceeded) || isTimeout(res.err) {
			t.Fatalf("player %d: connection still open after Shutdown returned (got %v)", i, res.got)
		}
		if want := "[StreamEOF NetStream.Play.UnpublishNotify]"; fmt.Sprint(res.got) != want {
			t.Errorf("player %d got %v before its connection closed (%v), want %s", i, res.got, res.err, want)
		}
	}
}

// isTimeout reports whether err is a read deadline.
func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

// TestAggregateTimestampsRebased: the sub-messages of an aggregate message
// reach players with their timestamps rebased on the aggregate message's:
// the first sub-message takes the aggregate's timestamp and the others
// keep their distance from it (the FLV tag timestamps inside are the
// encoder's own clock).
func TestAggregateTimestampsRebased(t *testing.T) {
	ts := startServer(t, nil)
	pub := publish(t, ts, "live", "k")
	player := ts.dial(t, "live")
	st, err := player.Play("k")
	expectStatus(t, st, err, "NetStream.Play.Start")

	// The sub-message clock starts just below 2^24 and crosses it (into
	// the extended timestamp byte): rebased on the aggregate's 5000, the
	// frames are at 5000, 5040 and 5080, the audio at 5020.
	const base = 1<<24 - 30
	sub := func(typ uint8, ts uint32, payload []byte) *chunk.Message {
		return &chunk.Message{Type: typ, Timestamp: ts, Payload: payload}
	}
	body := aggregate(
		sub(message.TypeVideo, base, videoHeader),
		sub(message.TypeVideo, base, keyframe(1)),
		sub(message.TypeAudio, base+20, audioFrame(1)),
		sub(message.TypeVideo, base+40, interFrame(2)),
		sub(message.TypeVideo, base+80, interFrame(3)),
	)
	if err := pub.WriteMessage(&chunk.Message{ChunkStreamID: 6, Type: message.TypeAggregate, StreamID: pub.StreamID(),
		Timestamp: 5000, Payload: body}); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		typ     uint8
		ts      uint32
		payload []byte
	}{
		{message.TypeVideo, 5000, videoHeader},
		{message.TypeVideo, 5000, keyframe(1)},
		{message.TypeAudio, 5020, audioFrame(1)},
		{message.TypeVideo, 5040, interFrame(2)},
		{message.TypeVideo, 5080, interFrame(3)},
	}
	got := readMedia(t, player, len(want))
	for i, w := range want {
		m := got[i]
		if m.Type != w.typ || m.Timestamp != w.ts || !bytes.Equal(m.Payload, w.payload) {
			t.Errorf("message %d: type %d at %d ms, % x; want type %d at %d ms, % x",
				i, m.Type, m.Timestamp, m.Payload, w.typ, w.ts, w.payload)
		}
	}
}
