package server

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/amf"
	"github.com/rtmp-server/rtmp-server/internal/client"
	"github.com/rtmp-server/rtmp-server/internal/message"
)

// stubAdmission refuses channels named "held", admits the others, and
// counts the releases per stream id.
type stubAdmission struct {
	mu       sync.Mutex
	admitted []PublishEvent // guarded by mu
	released map[string]int // guarded by mu
}

func (a *stubAdmission) Admit(ctx context.Context, ev PublishEvent) (func(), error) {
	if ev.Channel == "held" {
		return nil, errors.New("already publishing on box-b")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.admitted = append(a.admitted, ev)
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.released[ev.StreamID]++
	}, nil
}

func (a *stubAdmission) releases(streamID string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.released[streamID]
}

// TestAdmission: an approved publish that the Admission refuses is refused
// with its reason, and the authorizer gets the stop of the start it
// approved; an admitted one is released once when it ends.
func TestAdmission(t *testing.T) {
	adm := &stubAdmission{released: map[string]int{}}
	auth := newRecordingAuthorizer()
	ts := startServer(t, nil, func(s *Server) {
		s.Admission = adm
		s.SetAuthorizer(auth)
	})

	c := ts.dial(t, "held")
	st, err := c.Publish("k")
	expectStatus(t, st, err, "NetStream.Publish.BadName")
	if st.Description != "already publishing on box-b" {
		t.Errorf("description %q, want the Admission's reason", st.Description)
	}
	ts.events.wait(t, "the refused publish", 1, kind(PublishRefused, "already publishing on box-b"))
	waitFor(t, "the stop of the refused publish", 10*time.Second, func() bool {
		starts, stops, _ := auth.counts()
		return starts == 1 && stops == 1
	})

	pub := publish(t, ts, "free", "k")
	ev := ts.events.wait(t, "the publish", 1, kind(PublishAccepted, ""))[0]
	adm.mu.Lock()
	admitted := adm.admitted
	adm.mu.Unlock()
	if len(admitted) != 1 || admitted[0].Channel != "free" || admitted[0].Key != "k" || admitted[0].StreamID != ev.StreamID {
		t.Fatalf("admitted %+v, want channel free, key k, stream id %q", admitted, ev.StreamID)
	}
	if n := adm.releases(ev.StreamID); n != 0 {
		t.Fatalf("released %d times while live", n)
	}
	pub.Close()
	waitFor(t, "the release", 10*time.Second, func() bool { return adm.releases(ev.StreamID) == 1 })
	ts.events.wait(t, "the end", 1, kind(StreamEnded, ""))
	if n := adm.releases(ev.StreamID); n != 1 {
		t.Fatalf("released %d times, want 1", n)
	}
}

// dialCapsEx connects to app announcing capsEx in connect, and creates a
// stream.
func dialCapsEx(t *testing.T, addr, app string, capsEx float64) *client.Conn {
	t.Helper()
	c, err := client.Dial(addr, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if err := c.ConnectWith(app, "rtmp://localhost/"+app, amf.Property{Key: "capsEx", Value: capsEx}); err != nil {
		t.Fatalf("connect: %v", err)
	}
	if _, err := c.CreateStream(); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRequestReconnect: a draining server's RequestReconnect sends
// NetConnection.Connect.ReconnectRequest to the publisher that announced
// the Reconnect capability, not to the one that did not, and both go on
// publishing.
func TestRequestReconnect(t *testing.T) {
	ts := startServer(t, nil)
	able := dialCapsEx(t, ts.addr, "able", capsExReconnect|0x02)
	if st, err := able.Publish("k"); err != nil {
		t.Fatal(st, err)
	}
	unable := dialCapsEx(t, ts.addr, "unable", 0x02)
	if st, err := unable.Publish("k"); err != nil {
		t.Fatal(st, err)
	}
	player := dialCapsEx(t, ts.addr, "able", capsExReconnect)
	if st, err := player.Play("k"); err != nil {
		t.Fatal(st, err)
	}

	ts.Drain(DrainPublishes)
	if n := ts.RequestReconnect(); n != 1 {
		t.Fatalf("RequestReconnect asked %d publishers, want 1", n)
	}
	cmd, err := able.ReadCommand()
	if err != nil {
		t.Fatal(err)
	}
	st := cmd.StatusOf()
	if cmd.Name != "onStatus" || cmd.StreamID != 0 || st.Code != "NetConnection.Connect.ReconnectRequest" || st.Level != "status" {
		t.Fatalf("got %s on stream %d: %+v, want onStatus NetConnection.Connect.ReconnectRequest on stream 0", cmd.Name, cmd.StreamID, st)
	}
	if !strings.Contains(st.Description, "draining") {
		t.Errorf("description %q does not say the server drains", st.Description)
	}
	// Both still publish: media reaches the player.
	for i, c := range []*client.Conn{able, unable} {
		if err := c.WriteMedia(message.TypeVideo, 0, videoHeader); err != nil {
			t.Fatalf("publisher %d after the request: %v", i, err)
		}
	}
	readMedia(t, player, 1)
	// The publisher without the capability got no request: what the
	// server sends it after the request (the answer to an unknown
	// method) comes first.
	txn, err := unable.Call(0, "noSuchMethod", nil)
	if err != nil {
		t.Fatal(err)
	}
	for {
		cmd, err := unable.ReadCommand()
		if err != nil {
			t.Fatal(err)
		}
		if cmd.StatusOf().Code == reconnectRequestCode {
			t.Fatal("a publisher without the Reconnect capability was asked to reconnect")
		}
		if cmd.Txn == txn && cmd.Name == "_error" {
			break
		}
	}
	for _, m := range player.Pending {
		if m.Type == message.TypeCommandAMF0 {
			t.Errorf("the player got a command: % x", m.Payload)
		}
	}
}
