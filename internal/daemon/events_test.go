package daemon

// Process-level tests of the start and stop events. Each test runs the
// built rtmp-server as a child process, configured through its --config
// file and environment, against a callback server that verifies every
// token (testpeer.Callback), with ffmpeg or the Go client publishing,
// ffprobe playing, and a real redis-server carrying control commands.
// Nothing waits a fixed time: every wait is for a condition (a log line of
// the server, an event at the callback server, a process exit), bounded by
// a deadline.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/callback"
	"github.com/rtmp-server/rtmp-server/internal/client"
	"github.com/rtmp-server/rtmp-server/internal/hub"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// What the callback server expects in every token.
const (
	evSecret   = "events-test-secret"
	evSubject  = "events_test"
	evRTMPHost = "rtmp-1.events.test"
)

// RTMP status codes the tests expect.
const (
	publishStart   = "NetStream.Publish.Start"
	publishBadName = "NetStream.Publish.BadName"
)

func TestEvents(t *testing.T) {
	bin := buildEventsServer(t)
	tests := []struct {
		name string
		run  func(t *testing.T, bin string)
	}{
		{"ApprovedPublishPlaysAndStopsAtShutdown", testApprovedPublish},
		{"RefusedStarts", testRefusedStarts},
		{"StopWhenPublisherEnds", testStopWhenPublisherEnds},
		{"StopWhenReplacedByReconnectingEncoder", testStopWhenReplaced},
		{"StopWhenPublisherLeavesDuringStart", testLeftDuringStart},
		{"KillSessionOverRedis", testKillSession},
		{"CloseStreamOverRedis", testCloseStream},
		{"StopRetriedUntilDelivered", testStopRetried},
		{"KillSessionAfterRedisRestart", testKillAfterRedisRestart},
		{"RacingPublishersBothApproved", testPublishRace},
		{"SlowCallbackDelaysOnlyItsChannel", testSlowCallback},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, bin)
		})
	}
}

// startEvCallback starts a callback server that checks every token against
// what the test servers are configured with.
func startEvCallback(t *testing.T, respond testpeer.CallbackResponder) *testpeer.Callback {
	t.Helper()
	return testpeer.StartCallback(t, testpeer.CallbackWant{
		Secret:        evSecret,
		Subject:       evSubject,
		RTMPHost:      evRTMPHost,
		ClientIP:      "127.0.0.1",
		TokenLifetime: callback.TokenLifetime,
	}, respond)
}

// approveEv approves every start with a stream id of its own and accepts
// every stop.
func approveEv() testpeer.CallbackResponder {
	var n atomic.Int64
	return func(r testpeer.CallbackRequest) testpeer.CallbackReply {
		if r.Event == callback.EventStart {
			return testpeer.CallbackReply{StreamID: fmt.Sprintf("sid-%s-%d", r.Channel, n.Add(1))}
		}
		return testpeer.CallbackReply{}
	}
}

// evAccepted reports whether the callback server answered r with 200.
func evAccepted(r testpeer.CallbackRequest) bool {
	return r.Answered && (r.Reply.Status == 0 || r.Reply.Status == http.StatusOK)
}

// evEvents returns the events of one kind for channel ("" for all).
func evEvents(reqs []testpeer.CallbackRequest, event, channel string) []testpeer.CallbackRequest {
	var out []testpeer.CallbackRequest
	for _, r := range reqs {
		if r.Event == event && (channel == "" || r.Channel == channel) {
			out = append(out, r)
		}
	}
	return out
}

// evDelivered returns the stops for channel that were answered 200.
func evDelivered(reqs []testpeer.CallbackRequest, channel string) []testpeer.CallbackRequest {
	var out []testpeer.CallbackRequest
	for _, r := range evEvents(reqs, callback.EventStop, channel) {
		if evAccepted(r) {
			out = append(out, r)
		}
	}
	return out
}

// evApprovedStart returns the one start event of channel, which must have
// been approved, and its stream id.
func evApprovedStart(t *testing.T, cb *testpeer.Callback, channel string) testpeer.CallbackRequest {
	t.Helper()
	reqs := cb.Requests()
	starts := evEvents(reqs, callback.EventStart, channel)
	if len(starts) != 1 || !evAccepted(starts[0]) || starts[0].Reply.StreamID == "" {
		t.Fatalf("want one approved start for %q; events:\n%s", channel, testpeer.FormatCallbackRequests(reqs))
	}
	return starts[0]
}

// checkEvStops checks, once the server has exited, that every approved
// start got exactly one delivered stop carrying the stream id the start
// returned and describing the same publisher, and that no other stop was
// delivered.
func checkEvStops(t *testing.T, reqs []testpeer.CallbackRequest) {
	t.Helper()
	approved := make(map[string]testpeer.CallbackRequest)
	for _, r := range evEvents(reqs, callback.EventStart, "") {
		if !evAccepted(r) || r.Reply.StreamID == "" {
			continue
		}
		if _, dup := approved[r.Reply.StreamID]; dup {
			t.Errorf("stream id %q approved twice", r.Reply.StreamID)
		}
		approved[r.Reply.StreamID] = r
	}
	delivered := make(map[string]int)
	for _, r := range evDelivered(reqs, "") {
		start, ok := approved[r.StreamID]
		if !ok {
			t.Errorf("stop for stream id %q, which no approved start returned", r.StreamID)
			continue
		}
		if r.Channel != start.Channel || r.Key != start.Key || r.ClientIP != start.ClientIP {
			t.Errorf("stop for %q is for channel %q key %q from %s, its start for channel %q key %q from %s",
				r.StreamID, r.Channel, r.Key, r.ClientIP, start.Channel, start.Key, start.ClientIP)
		}
		delivered[r.StreamID]++
	}
	for id, start := range approved {
		if n := delivered[id]; n != 1 {
			t.Errorf("channel %q, stream id %q: %d stops delivered, want exactly 1", start.Channel, id, n)
		}
	}
	if t.Failed() {
		t.Logf("callback events:\n%s", testpeer.FormatCallbackRequests(reqs))
	}
}

// msgIs matches log lines with the message and fields given.
func msgIs(msg string, kv ...string) func(evLine) bool {
	return func(l evLine) bool { return l.has("msg", msg) && l.has(kv...) }
}

// probeH264AAC plays url with ffprobe and checks it finds the H.264 video
// and AAC audio that publishEvFFmpeg sends.
func probeH264AAC(t *testing.T, url string) {
	t.Helper()
	p := startEvPeer(t, "ffprobe", "-v", "error", "-rw_timeout", "10000000",
		"-show_entries", "stream=codec_type,codec_name,width,height", "-of", "json", url)
	if err := p.Wait(t, 30*time.Second); err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, p.Stderr.String())
	}
	var out struct {
		Streams []struct {
			CodecType string `json:"codec_type"`
			CodecName string `json:"codec_name"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
		}
	}
	if err := json.Unmarshal([]byte(p.Stdout.String()), &out); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, p.Stdout.String())
	}
	var video, audio bool
	for _, s := range out.Streams {
		video = video || s.CodecType == "video" && s.CodecName == "h264" && s.Width == 320 && s.Height == 240
		audio = audio || s.CodecType == "audio" && s.CodecName == "aac"
	}
	if !video || !audio {
		t.Fatalf("ffprobe found %+v, want h264 320x240 and aac", out.Streams)
	}
}

// testApprovedPublish: an approved ffmpeg publisher is playable; SIGTERM
// ends the process with status 0 after its stop event was delivered.
func testApprovedPublish(t *testing.T, bin string) {
	testpeer.Need(t, "ffprobe")
	cb := startEvCallback(t, approveEv())
	srv := startEvServer(t, bin, evSettings{callback: cb})

	pub := publishEvFFmpeg(t, srv.url("live", "secret-key"))
	published := srv.waitLog(t, "the publish", 1, pub, msgIs("publish", "channel", "live"))[0]
	start := evApprovedStart(t, cb, "live")
	if start.Key != "secret-key" {
		t.Errorf("start event key %q, want %q", start.Key, "secret-key")
	}
	if got := published.fields["stream_id"]; got != start.Reply.StreamID {
		t.Errorf("server published stream id %q, the callback returned %q", got, start.Reply.StreamID)
	}
	probeH264AAC(t, srv.url("live", "secret-key"))
	if n := len(evEvents(cb.Requests(), callback.EventStop, "")); n != 0 {
		t.Fatalf("%d stop events while the publisher is live", n)
	}

	srv.terminate(t)
	reqs := cb.Requests()
	stops := evDelivered(reqs, "live")
	if len(stops) != 1 {
		t.Fatalf("%d stops delivered by the time the server exited, want 1; events:\n%s",
			len(stops), testpeer.FormatCallbackRequests(reqs))
	}
	_, deliveredAt := srv.log.matching(msgIs("callback stop delivered", "stream_id", start.Reply.StreamID))
	_, stoppedAt := srv.log.matching(msgIs("stopped"))
	if len(deliveredAt) != 1 || len(stoppedAt) != 1 || deliveredAt[0] > stoppedAt[0] {
		t.Errorf("want the stop logged as delivered once, before \"stopped\"; log:\n%s", srv.log.String())
	}
	checkEvStops(t, reqs)
	pub.Wait(t, evWaitLimit) // the server closed its connection
}

// evRefused publishes with the Go client, expects NetStream.Publish.BadName,
// and returns the server's log line about the refusal, whose err must
// start with wantErr.
func evRefused(t *testing.T, srv *evServer, channel, wantErr string) evLine {
	t.Helper()
	c, st, err := evPublish(t, srv.addr, channel, "key-"+channel)
	if c != nil {
		defer c.Close()
	}
	if !errors.Is(err, client.ErrStatus) || st.Code != publishBadName {
		t.Fatalf("publish on %q: status %q, error %v; want %s", channel, st.Code, err, publishBadName)
	}
	line := srv.waitLog(t, "the refusal", 1, nil,
		msgIs("rejected", "channel", channel, "action", "publish", "reason", "callback refused"))[0]
	if got := line.fields["err"]; !strings.HasPrefix(got, wantErr) {
		t.Errorf("refusal logged with err %q, want it to start with %q", got, wantErr)
	}
	return line
}

// testRefusedStarts: every way a start can fail refuses the publisher with
// NetStream.Publish.BadName, logs which case it was, and sends no stop.
func testRefusedStarts(t *testing.T, bin string) {
	hang := make(chan struct{}) // never closed: that answer never comes
	cb := startEvCallback(t, func(r testpeer.CallbackRequest) testpeer.CallbackReply {
		if r.Event != callback.EventStart {
			return testpeer.CallbackReply{}
		}
		switch r.Channel {
		case "denied":
			// A stream id does not make a refusal an approval.
			return testpeer.CallbackReply{Status: http.StatusForbidden, StreamID: "sid-denied"}
		case "failing":
			return testpeer.CallbackReply{Status: http.StatusInternalServerError}
		case "noid":
			return testpeer.CallbackReply{Status: http.StatusOK}
		case "hanging":
			return testpeer.CallbackReply{StreamID: "sid-late", Hold: hang}
		}
		return testpeer.CallbackReply{Status: http.StatusTeapot}
	})
	srv := startEvServer(t, bin, evSettings{callback: cb, env: []string{"CALLBACK_TIMEOUT_SECONDS=1"}})

	cases := []struct{ channel, wantErr string }{
		{"denied", "callback: publish denied: status 403"},
		{"failing", "callback: publish denied: status 500"},
		{"noid", "callback: 200 without stream-id header"},
		{"hanging", "callback: timed out"},
	}
	for _, tc := range cases {
		t.Run(tc.channel, func(t *testing.T) {
			evRefused(t, srv, tc.channel, tc.wantErr)
			starts := evEvents(cb.Requests(), callback.EventStart, tc.channel)
			if len(starts) != 1 || starts[0].Key != "key-"+tc.channel {
				t.Errorf("want one start event for %q with its key; events:\n%s", tc.channel, testpeer.FormatCallbackRequests(starts))
			}
		})
	}
	cb.WaitFor(t, "the timed-out start to be abandoned", evWaitLimit, func(reqs []testpeer.CallbackRequest) bool {
		s := evEvents(reqs, callback.EventStart, "hanging")
		return len(s) == 1 && s[0].Abandoned
	})

	t.Run("unreachable", func(t *testing.T) {
		down := startEvServer(t, bin, evSettings{env: []string{
			"CALLBACK_URL=http://127.0.0.1:" + strconv.Itoa(evRefusingPort(t)) + "/rtmp/events",
			"JWT_SECRET=" + evSecret,
		}})
		line := evRefused(t, down, "unreachable", "callback: server unreachable")
		if !strings.Contains(line.fields["err"], "connection refused") {
			t.Errorf("refusal logged with err %q, want the connection refused", line.fields["err"])
		}
		down.terminate(t)
	})

	srv.terminate(t)
	reqs := cb.Requests()
	if stops := evEvents(reqs, callback.EventStop, ""); len(stops) != 0 {
		t.Errorf("stop events for refused publishers:\n%s", testpeer.FormatCallbackRequests(stops))
	}
	if lines, _ := srv.log.matching(func(l evLine) bool { return strings.HasPrefix(l.fields["msg"], "callback stop") }); len(lines) != 0 {
		t.Errorf("the server logged stop events: %q", lines[0].raw)
	}
}

// testStopWhenPublisherEnds: ffmpeg publishes for two seconds and ends;
// exactly one stop arrives, with the stream id its start returned.
func testStopWhenPublisherEnds(t *testing.T, bin string) {
	cb := startEvCallback(t, approveEv())
	srv := startEvServer(t, bin, evSettings{callback: cb})

	pub := publishEvFFmpeg(t, srv.url("ends", "k"), "-t", "2")
	srv.waitLog(t, "the publish", 1, pub, msgIs("publish", "channel", "ends"))
	if err := pub.Wait(t, 30*time.Second); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, pub.Stderr.String())
	}
	start := evApprovedStart(t, cb, "ends")
	srv.waitLog(t, "the unpublish", 1, nil, msgIs("unpublish", "channel", "ends", "stream_id", start.Reply.StreamID))
	cb.WaitFor(t, "the stop", evWaitLimit, func(reqs []testpeer.CallbackRequest) bool {
		return len(evDelivered(reqs, "ends")) == 1
	})

	srv.terminate(t)
	checkEvStops(t, cb.Requests())
}

// testStopWhenReplaced: an encoder whose session fell silent reconnects
// with the same key and replaces it; the old session's stop arrives while
// the new one publishes.
func testStopWhenReplaced(t *testing.T, bin string) {
	cb := startEvCallback(t, approveEv())
	srv := startEvServer(t, bin, evSettings{callback: cb})

	old, st, err := evPublish(t, srv.addr, "encoder", "k")
	if old != nil {
		defer old.Close()
	}
	if err != nil || st.Code != publishStart {
		t.Fatalf("first publish: status %q, error %v", st.Code, err)
	}
	oldID := evApprovedStart(t, cb, "encoder").Reply.StreamID
	// The first session sends nothing more, as when the encoder's network
	// died: the server lets the same key replace it once it is stale.
	fresh, st, err := evPublish(t, srv.addr, "encoder", "k")
	if fresh != nil {
		defer fresh.Close()
	}
	if err != nil || st.Code != publishStart {
		t.Fatalf("reconnecting publish: status %q, error %v", st.Code, err)
	}
	srv.waitLog(t, "the replaced session's unpublish", 1, nil, msgIs("unpublish", "channel", "encoder",
		"stream_id", oldID, "reason", hub.ErrReplaced.Error()))
	cb.WaitFor(t, "the replaced session's stop", evWaitLimit, func(reqs []testpeer.CallbackRequest) bool {
		d := evDelivered(reqs, "encoder")
		return len(d) == 1 && d[0].StreamID == oldID
	})

	fresh.Close()
	cb.WaitFor(t, "the new session's stop", evWaitLimit, func(reqs []testpeer.CallbackRequest) bool {
		return len(evDelivered(reqs, "encoder")) == 2
	})
	srv.terminate(t)
	reqs := cb.Requests()
	if n := len(evEvents(reqs, callback.EventStart, "encoder")); n != 2 {
		t.Errorf("%d start events, want 2", n)
	}
	checkEvStops(t, reqs)
}

// testLeftDuringStart: the publisher hangs up while its start is at the
// callback server, which then approves it: the approved start still gets
// its stop.
func testLeftDuringStart(t *testing.T, bin string) {
	release := make(chan struct{})
	approve := approveEv()
	cb := startEvCallback(t, func(r testpeer.CallbackRequest) testpeer.CallbackReply {
		reply := approve(r)
		if r.Event == callback.EventStart {
			reply.Hold = release
		}
		return reply
	})
	srv := startEvServer(t, bin, evSettings{callback: cb})

	c, err := evDialStream(t, srv.addr, "hangup")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Call(c.StreamID(), "publish", nil, "k", "live"); err != nil {
		t.Fatal(err)
	}
	cb.WaitFor(t, "the held start", evWaitLimit, func(reqs []testpeer.CallbackRequest) bool {
		return len(evEvents(reqs, callback.EventStart, "hangup")) == 1
	})
	c.Close()
	close(release)

	id := cb.WaitFor(t, "the approval", evWaitLimit, func(reqs []testpeer.CallbackRequest) bool {
		s := evEvents(reqs, callback.EventStart, "hangup")
		return len(s) == 1 && s[0].Answered
	})[0].Reply.StreamID
	cb.WaitFor(t, "the stop", evWaitLimit, func(reqs []testpeer.CallbackRequest) bool {
		d := evDelivered(reqs, "hangup")
		return len(d) == 1 && d[0].StreamID == id
	})
	srv.terminate(t)
	checkEvStops(t, cb.Requests())
}

// startEvRedisServer starts a redis-server and a server subscribed to it.
func startEvRedisServer(t *testing.T, bin string, cb *testpeer.Callback) (*evServer, *testpeer.Redis) {
	t.Helper()
	r := testpeer.StartRedis(t)
	srv := startEvServer(t, bin, evSettings{callback: cb, redis: r})
	srv.waitLog(t, "the Redis subscription", 1, nil, msgIs("redis connected and subscribed"))
	return srv, r
}

// testKillSession: kill-session over Redis ends the ffmpeg publisher, and
// exactly one stop arrives.
func testKillSession(t *testing.T, bin string) {
	cb := startEvCallback(t, approveEv())
	srv, r := startEvRedisServer(t, bin, cb)

	pub := publishEvFFmpeg(t, srv.url("killme", "k"))
	srv.waitLog(t, "the publish", 1, pub, msgIs("publish", "channel", "killme"))
	start := evApprovedStart(t, cb, "killme")

	sendEvCommand(t, r, "kill-session>killme")
	pub.Wait(t, evWaitLimit)
	srv.waitLog(t, "the command", 1, nil, msgIs("control command", "command", "kill-session", "channel", "killme", "outcome", "acted"))
	srv.waitLog(t, "the unpublish", 1, nil, msgIs("unpublish", "channel", "killme",
		"stream_id", start.Reply.StreamID, "reason", "killed by control command"))
	cb.WaitFor(t, "the stop", evWaitLimit, func(reqs []testpeer.CallbackRequest) bool {
		return len(evDelivered(reqs, "killme")) == 1
	})

	srv.terminate(t)
	checkEvStops(t, cb.Requests())
}

// testCloseStream: close-stream with another stream id leaves the
// publisher alone; with its own stream id it ends it, with one stop.
func testCloseStream(t *testing.T, bin string) {
	cb := startEvCallback(t, approveEv())
	srv, r := startEvRedisServer(t, bin, cb)

	pub := publishEvFFmpeg(t, srv.url("shut", "k"))
	srv.waitLog(t, "the publish", 1, pub, msgIs("publish", "channel", "shut"))
	id := evApprovedStart(t, cb, "shut").Reply.StreamID

	const wrongID = "sid-shut-not-this-one"
	sendEvCommand(t, r, "close-stream>shut|"+wrongID)
	srv.waitLog(t, "the ignored command", 1, pub, msgIs("control command", "command", "close-stream",
		"channel", "shut", "stream_id", wrongID, "outcome", "not held by this server"))
	// The command has been applied, and the stream still plays.
	evPlayMedia(t, srv.addr, "shut", "k")
	if pub.Exited() {
		t.Fatalf("ffmpeg ended after close-stream with a wrong stream id: %v\n%s", pub.Err(), pub.Stderr.String())
	}
	if lines, _ := srv.log.matching(msgIs("unpublish", "channel", "shut")); len(lines) != 0 {
		t.Fatalf("unpublished after close-stream with a wrong stream id: %s", lines[0].raw)
	}
	if stops := evEvents(cb.Requests(), callback.EventStop, ""); len(stops) != 0 {
		t.Fatalf("stop events after close-stream with a wrong stream id:\n%s", testpeer.FormatCallbackRequests(stops))
	}

	sendEvCommand(t, r, "close-stream>shut|"+id)
	pub.Wait(t, evWaitLimit)
	srv.waitLog(t, "the command", 1, nil, msgIs("control command", "command", "close-stream",
		"channel", "shut", "stream_id", id, "outcome", "acted"))
	cb.WaitFor(t, "the stop", evWaitLimit, func(reqs []testpeer.CallbackRequest) bool {
		return len(evDelivered(reqs, "shut")) == 1
	})

	srv.terminate(t)
	checkEvStops(t, cb.Requests())
}

// testStopRetried: the callback server answers the stop 500 twice, is then
// down for an attempt, and comes back: the stop is retried until it is
// delivered, once.
func testStopRetried(t *testing.T, bin string) {
	var stopAttempts atomic.Int64
	approve := approveEv()
	cb := startEvCallback(t, func(r testpeer.CallbackRequest) testpeer.CallbackReply {
		if r.Event == callback.EventStop && stopAttempts.Add(1) <= 2 {
			return testpeer.CallbackReply{Status: http.StatusInternalServerError}
		}
		return approve(r)
	})
	srv := startEvServer(t, bin, evSettings{callback: cb})

	c, st, err := evPublish(t, srv.addr, "retry", "k")
	if c != nil {
		defer c.Close()
	}
	if err != nil || st.Code != publishStart {
		t.Fatalf("publish: status %q, error %v", st.Code, err)
	}
	id := evApprovedStart(t, cb, "retry").Reply.StreamID
	c.Close() // the publisher goes away: the stop is due

	cb.WaitFor(t, "two stops answered 500", evWaitLimit, func(reqs []testpeer.CallbackRequest) bool {
		n := 0
		for _, r := range evEvents(reqs, callback.EventStop, "retry") {
			if r.Answered && r.Reply.Status == http.StatusInternalServerError {
				n++
			}
		}
		return n == 2
	})
	cb.Stop()
	refused := func(l evLine) bool {
		return l.has("msg", "callback stop failed, retrying", "channel", "retry", "stream_id", id) &&
			strings.Contains(l.fields["error"], "server unreachable")
	}
	srv.waitLog(t, "a stop attempt refused while the callback server is down", 1, nil, refused)
	cb.Restart()

	cb.WaitFor(t, "the stop delivered", evWaitLimit, func(reqs []testpeer.CallbackRequest) bool {
		return len(evDelivered(reqs, "retry")) == 1
	})
	delivered := srv.waitLog(t, "the delivery", 1, nil, msgIs("callback stop delivered", "channel", "retry", "stream_id", id))

	srv.terminate(t)
	reqs := cb.Requests()
	stops := evEvents(reqs, callback.EventStop, "retry")
	for _, s := range stops {
		if s.StreamID != id {
			t.Errorf("stop attempt with stream id %q, want %q", s.StreamID, id)
		}
	}
	// Every attempt either reached the callback server or was refused.
	refusedLines, _ := srv.log.matching(refused)
	if got, want := delivered[0].fields["attempts"], strconv.Itoa(len(stops)+len(refusedLines)); got != want {
		t.Errorf("delivery logged after %s attempts; the callback server saw %d and %d were refused",
			got, len(stops), len(refusedLines))
	}
	if len(stops) < 3 {
		t.Errorf("%d stop attempts reached the callback server, want 2 refused and 1 accepted", len(stops))
	}
	checkEvStops(t, reqs)
}

// testKillAfterRedisRestart: Redis goes away and comes back while ffmpeg
// publishes; the server subscribes again and kill-session still works.
func testKillAfterRedisRestart(t *testing.T, bin string) {
	cb := startEvCallback(t, approveEv())
	srv, r := startEvRedisServer(t, bin, cb)

	pub := publishEvFFmpeg(t, srv.url("phoenix", "k"))
	srv.waitLog(t, "the publish", 1, pub, msgIs("publish", "channel", "phoenix"))

	r.Stop()
	srv.waitLog(t, "the lost Redis connection", 1, pub, msgIs("redis connection lost, reconnecting"))
	r.Restart()
	srv.waitLog(t, "the second Redis subscription", 2, pub, msgIs("redis connected and subscribed"))

	sendEvCommand(t, r, "kill-session>phoenix")
	pub.Wait(t, evWaitLimit)
	srv.waitLog(t, "the command", 1, nil, msgIs("control command", "command", "kill-session", "channel", "phoenix", "outcome", "acted"))
	cb.WaitFor(t, "the stop", evWaitLimit, func(reqs []testpeer.CallbackRequest) bool {
		return len(evDelivered(reqs, "phoenix")) == 1
	})

	srv.terminate(t)
	checkEvStops(t, cb.Requests())
}

// evPublishResult is what a publish attempt run on another goroutine
// reports.
type evPublishResult struct {
	key  string
	conn *client.Conn
	st   client.Status
	err  error
}

// testPublishRace: two publishers ask for one channel at once and the
// callback approves both. One wins; the other gets BadName, and since its
// start was approved, a stop too.
func testPublishRace(t *testing.T, bin string) {
	bothAsked := make(chan struct{})
	var asked atomic.Int64
	approve := approveEv()
	cb := startEvCallback(t, func(r testpeer.CallbackRequest) testpeer.CallbackReply {
		reply := approve(r)
		if r.Event == callback.EventStart {
			// Answer neither until both are waiting for their answer.
			if asked.Add(1) == 2 {
				close(bothAsked)
			}
			reply.Hold = bothAsked
		}
		return reply
	})
	srv := startEvServer(t, bin, evSettings{callback: cb})

	results := make(chan evPublishResult, 2)
	for _, key := range []string{"first", "second"} {
		go func() {
			c, st, err := evPublish(t, srv.addr, "race", key)
			results <- evPublishResult{key, c, st, err}
		}()
	}
	var winner, loser *evPublishResult
	for range 2 {
		var res evPublishResult
		select {
		case res = <-results:
		case <-time.After(evWaitLimit):
			t.Fatal("publishers got no answer")
		}
		if res.conn != nil {
			defer res.conn.Close()
		}
		switch {
		case res.err == nil && res.st.Code == publishStart:
			winner = &res
		case errors.Is(res.err, client.ErrStatus) && res.st.Code == publishBadName:
			loser = &res
		default:
			t.Fatalf("publisher %q: status %q, error %v", res.key, res.st.Code, res.err)
		}
	}
	if winner == nil || loser == nil {
		t.Fatalf("want one publisher to win and one to get %s; got winner %v, loser %v", publishBadName, winner, loser)
	}

	idOf := make(map[string]string)
	for _, s := range evEvents(cb.Requests(), callback.EventStart, "race") {
		if evAccepted(s) {
			idOf[s.Key] = s.Reply.StreamID
		}
	}
	if len(idOf) != 2 {
		t.Fatalf("want both starts approved; events:\n%s", testpeer.FormatCallbackRequests(cb.Requests()))
	}
	srv.waitLog(t, "the loser's refusal", 1, nil, msgIs("rejected", "channel", "race",
		"reason", "stream already publishing", "stream_id", idOf[loser.key]))
	// The loser's stop comes while the winner still publishes.
	cb.WaitFor(t, "the loser's stop", evWaitLimit, func(reqs []testpeer.CallbackRequest) bool {
		d := evDelivered(reqs, "race")
		return len(d) == 1 && d[0].StreamID == idOf[loser.key]
	})

	winner.conn.Close()
	cb.WaitFor(t, "the winner's stop", evWaitLimit, func(reqs []testpeer.CallbackRequest) bool {
		return len(evDelivered(reqs, "race")) == 2
	})
	srv.terminate(t)
	checkEvStops(t, cb.Requests())
}

// testSlowCallback: while the callback holds the start of one channel, a
// publish on another channel completes.
func testSlowCallback(t *testing.T, bin string) {
	release := make(chan struct{})
	approve := approveEv()
	cb := startEvCallback(t, func(r testpeer.CallbackRequest) testpeer.CallbackReply {
		reply := approve(r)
		if r.Event == callback.EventStart && r.Channel == "slow" {
			reply.Hold = release
		}
		return reply
	})
	srv := startEvServer(t, bin, evSettings{callback: cb})

	slow := make(chan evPublishResult, 1)
	go func() {
		c, st, err := evPublish(t, srv.addr, "slow", "k")
		slow <- evPublishResult{"k", c, st, err}
	}()
	cb.WaitFor(t, "the held start", evWaitLimit, func(reqs []testpeer.CallbackRequest) bool {
		return len(evEvents(reqs, callback.EventStart, "slow")) == 1
	})

	quick, st, err := evPublish(t, srv.addr, "quick", "k")
	if quick != nil {
		defer quick.Close()
	}
	if err != nil || st.Code != publishStart {
		t.Fatalf("publish on the other channel: status %q, error %v", st.Code, err)
	}
	select {
	case res := <-slow:
		t.Fatalf("the held publish finished first: status %q, error %v", res.st.Code, res.err)
	default:
	}
	if s := evEvents(cb.Requests(), callback.EventStart, "slow")[0]; s.Answered || s.Abandoned {
		t.Fatalf("the held start ended before the other publish: %+v", s)
	}

	close(release)
	var res evPublishResult
	select {
	case res = <-slow:
	case <-time.After(evWaitLimit):
		t.Fatal("the held publish got no answer after its callback answered")
	}
	if res.conn != nil {
		defer res.conn.Close()
	}
	if res.err != nil || res.st.Code != publishStart {
		t.Fatalf("the held publish: status %q, error %v", res.st.Code, res.err)
	}

	quick.Close()
	res.conn.Close()
	cb.WaitFor(t, "both stops", evWaitLimit, func(reqs []testpeer.CallbackRequest) bool {
		return len(evDelivered(reqs, "")) == 2
	})
	srv.terminate(t)
	checkEvStops(t, cb.Requests())
}
