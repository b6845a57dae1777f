package server

import (
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/message"
	"github.com/rtmp-server/rtmp-server/internal/session"
)

// sessionStates returns the session states of the server's connections
// playing or publishing, by role.
func (s *Server) sessionStates() (players []session.State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.session == nil {
			continue
		}
		if st := c.session.Snapshot(); st.Playing != nil {
			players = append(players, st)
		}
	}
	return players
}

// TestStateHasWireChunkSize: a player's session state shows the chunk
// size its writer last told it, also when the media of a stream published
// after a reload made the writer announce another one than at connect.
func TestStateHasWireChunkSize(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.ChunkSize = 1000 })
	p := ts.dial(t, "live")
	st, err := p.Play("k")
	expectStatus(t, st, err, "NetStream.Play.Start")
	// The session records the play once the hub has accepted it, and the
	// client may see the answer first.
	var states []session.State
	waitFor(t, "the player's session state", 5*time.Second, func() bool { states = ts.sessionStates(); return len(states) == 1 })
	if states[0].OutChunkSize != 1000 || states[0].WireChunkSize != 1000 {
		t.Fatalf("player state %+v, want out and wire chunk size 1000", states[0])
	}

	opts := ts.Options()
	opts.ChunkSize = 3000
	mustSetOptions(t, ts.Server, opts)
	pub := publish(t, ts, "live", "k")
	for _, payload := range [][]byte{videoHeader, keyframe(1)} {
		if err := pub.WriteMedia(message.TypeVideo, 0, payload); err != nil {
			t.Fatal(err)
		}
	}
	readMedia(t, p, 2) // written after the Set Chunk Size the writer announced
	states = ts.sessionStates()
	if len(states) != 1 || states[0].OutChunkSize != 1000 || states[0].WireChunkSize != 3000 {
		t.Fatalf("player states %+v, want out chunk size 1000 (connect), wire 3000 (the stream's)", states)
	}
}
