package daemon

// Process-level tests of control commands that arrive while a publish waits
// for its start callback: the built server, a real redis-server, and a
// callback server that holds the start answer until the command has been
// applied.

import (
	"errors"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/callback"
	"github.com/rtmp-server/rtmp-server/internal/client"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

func TestPendingPublishEvents(t *testing.T) {
	bin := buildEventsServer(t)
	tests := []struct {
		name    string
		channel string
		command func(streamID string) string
	}{
		{"KillSessionRefusesPendingPublish", "pend_kill",
			func(string) string { return "kill-session>pend_kill" }},
		{"CloseStreamRefusesPendingPublishApprovedWithItsID", "pend_close",
			func(id string) string { return "close-stream>pend_close|" + id }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			testCommandWhilePending(t, bin, tt.channel, tt.command)
		})
	}
}

// testCommandWhilePending: a publish waits for its start answer; the
// command (built with the stream id the answer will carry) is applied to
// it; the answer approves it; the publisher is refused with an error
// status and the callback server gets the stop for that stream id.
func testCommandWhilePending(t *testing.T, bin, channel string, command func(streamID string) string) {
	release := make(chan struct{})
	const streamID = "sid-pending-1"
	cb := startEvCallback(t, func(r testpeer.CallbackRequest) testpeer.CallbackReply {
		if r.Event == callback.EventStart {
			return testpeer.CallbackReply{StreamID: streamID, Hold: release}
		}
		return testpeer.CallbackReply{}
	})
	srv, r := startEvRedisServer(t, bin, cb)

	results := make(chan evPublishResult, 1)
	go func() {
		c, st, err := evPublish(t, srv.addr, channel, "k")
		results <- evPublishResult{"k", c, st, err}
	}()
	cb.WaitFor(t, "the held start", evWaitLimit, func(reqs []testpeer.CallbackRequest) bool {
		return len(evEvents(reqs, callback.EventStart, channel)) == 1
	})

	cmd := command(streamID)
	sendEvCommand(t, r, cmd)
	srv.waitLog(t, "the command applied to the pending publish", 1, nil, func(l evLine) bool {
		return l.has("msg", "control command", "channel", channel,
			"outcome", "applied to pending publish", "pending_publishes", "1")
	})
	close(release)

	var res evPublishResult
	select {
	case res = <-results:
	case <-time.After(evWaitLimit):
		t.Fatal("the publisher got no answer")
	}
	if res.conn != nil {
		defer res.conn.Close()
	}
	if !errors.Is(res.err, client.ErrStatus) || res.st.Code != publishBadName {
		t.Fatalf("publish after %q: status %q, error %v; want %s", cmd, res.st.Code, res.err, publishBadName)
	}
	srv.waitLog(t, "the refusal", 1, nil, msgIs("rejected", "channel", channel,
		"reason", "killed by control command before going live", "stream_id", streamID))
	cb.WaitFor(t, "the stop of the refused publish", evWaitLimit, func(reqs []testpeer.CallbackRequest) bool {
		d := evDelivered(reqs, channel)
		return len(d) == 1 && d[0].StreamID == streamID
	})
	if lines, _ := srv.log.matching(msgIs("publish", "channel", channel)); len(lines) != 0 {
		t.Fatalf("the publish went live: %s", lines[0].raw)
	}

	srv.terminate(t)
	checkEvStops(t, cb.Requests())
}

// TestNoStopWhenShutdownInterruptsStart: the server shuts down while a
// start waits for its answer, which the callback server then gives; the
// server never received that approval, so no stop is sent (README: the
// callback server expires such approvals itself).
func TestNoStopWhenShutdownInterruptsStart(t *testing.T) {
	bin := buildEventsServer(t)
	release := make(chan struct{})
	cb := startEvCallback(t, func(r testpeer.CallbackRequest) testpeer.CallbackReply {
		if r.Event == callback.EventStart {
			return testpeer.CallbackReply{StreamID: "sid-never-received", Hold: release}
		}
		return testpeer.CallbackReply{}
	})
	srv := startEvServer(t, bin, evSettings{callback: cb})

	results := make(chan evPublishResult, 1)
	go func() {
		c, st, err := evPublish(t, srv.addr, "shutdown_pending", "k")
		results <- evPublishResult{"k", c, st, err}
	}()
	cb.WaitFor(t, "the held start", evWaitLimit, func(reqs []testpeer.CallbackRequest) bool {
		return len(evEvents(reqs, callback.EventStart, "shutdown_pending")) == 1
	})
	srv.terminate(t)
	cb.WaitFor(t, "the start abandoned by the server", evWaitLimit, func(reqs []testpeer.CallbackRequest) bool {
		s := evEvents(reqs, callback.EventStart, "shutdown_pending")
		return len(s) == 1 && s[0].Abandoned
	})
	close(release)
	res := <-results
	if res.conn != nil {
		res.conn.Close()
	}
	if res.err == nil && res.st.Code == publishStart {
		t.Fatal("the publish went live during shutdown")
	}
	reqs := cb.Requests()
	if stops := evEvents(reqs, callback.EventStop, ""); len(stops) != 0 {
		t.Fatalf("stop for an approval the server never received:\n%s", testpeer.FormatCallbackRequests(reqs))
	}
}
