package daemon

// Process-level tests of a fleet: two rtmp-server processes (boxes A and
// B) sharing one real redis-server, ffmpeg publishers and players, and one
// callback server that verifies every token. Each test has its own Redis,
// so the tests run in parallel; claims live FLEET_CLAIM_TTL_SECONDS=3.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtmp-server/rtmp-server/internal/amf"
	"github.com/rtmp-server/rtmp-server/internal/callback"
	"github.com/rtmp-server/rtmp-server/internal/client"
	"github.com/rtmp-server/rtmp-server/internal/fleet"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

const (
	fleetBoxA = "box-a.fleet.test"
	fleetBoxB = "box-b.fleet.test"
	// fleetTTL is the claims' TTL in these tests, short so that a dead
	// box's claim expires quickly, long enough that a test can act while
	// the claim of a box it just killed still lives.
	fleetTTL = 3 * time.Second
)

func TestFleet(t *testing.T) {
	bin := buildEventsServer(t)
	tests := []struct {
		name string
		run  func(t *testing.T, bin string)
	}{
		{"OtherKeyRefusedSameKeyTakesOver", testFleetTakeover},
		{"DeadBoxClaimExpires", testFleetDeadBox},
		{"RedisRestartClaimsBackNewerEnds", testFleetRedisRestart},
		{"Drain", testFleetDrain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, bin)
		})
	}
}

// startFleetCallback starts a callback server that takes tokens from
// both boxes.
func startFleetCallback(t *testing.T) *testpeer.Callback {
	t.Helper()
	return testpeer.StartCallback(t, testpeer.CallbackWant{
		Secret:         evSecret,
		Subject:        evSubject,
		RTMPHost:       fleetBoxA,
		OtherRTMPHosts: []string{fleetBoxB},
		ClientIP:       "127.0.0.1",
		TokenLifetime:  callback.TokenLifetime,
	}, approveEv())
}

// startBox runs one box of the fleet on r, and waits for its command
// subscription.
func startBox(t *testing.T, bin, host string, r *testpeer.Redis, cb *testpeer.Callback, env ...string) *evServer {
	t.Helper()
	st := evSettings{callback: cb, redis: r, env: append([]string{
		"RTMP_HOST=" + host, "FLEET=YES", "FLEET_CLAIM_TTL_SECONDS=" + strconv.Itoa(int(fleetTTL/time.Second)),
	}, env...)}
	if cb != nil {
		cb.ExpectRTMPPort(0) // two boxes, two ports
	}
	srv := startEvServer(t, bin, st)
	if cb != nil {
		cb.ExpectRTMPPort(0)
	}
	srv.waitLog(t, "the Redis subscription", 1, nil, msgIs("redis connected and subscribed"))
	return srv
}

// fleetRedis is a client of the test's Redis.
func fleetRedis(t *testing.T, r *testpeer.Redis) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), Protocol: 2, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

// getJSON reads key as JSON into v; it reports whether the key exists.
func getJSON(t *testing.T, rc *redis.Client, key string, v any) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	raw, err := rc.Get(ctx, key).Result()
	if err == redis.Nil {
		return false
	}
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	if err := json.Unmarshal([]byte(raw), v); err != nil {
		t.Fatalf("GET %s: %v: %s", key, err, raw)
	}
	return true
}

// waitClaim waits until channel's claim names box (and, if not empty,
// streamID) and returns it.
func waitClaim(t *testing.T, rc *redis.Client, channel, box, streamID string) fleet.StreamRecord {
	t.Helper()
	var rec fleet.StreamRecord
	testpeer.WaitFor(t, "the claim of "+channel+" by "+box, evWaitLimit, func() bool {
		rec = fleet.StreamRecord{}
		return getJSON(t, rc, "rtmp:stream:"+channel, &rec) && rec.Box == box && (streamID == "" || rec.StreamID == streamID)
	})
	return rec
}

// publishRefusedFFmpeg runs ffmpeg publishing to url, which the server
// must refuse: ffmpeg ends with an error.
func publishRefusedFFmpeg(t *testing.T, url string) *testpeer.Process {
	t.Helper()
	p := publishEvFFmpeg(t, url, "-t", "5")
	if err := p.Wait(t, evWaitLimit); err == nil {
		t.Fatalf("ffmpeg published to %s, want a refusal:\n%s", url, p.Stderr.String())
	}
	return p
}

// testFleetTakeover: ffmpeg publishes X on box A; ffmpeg with another key
// on box B is refused ("already publishing on A"); with the same key, B
// takes over: A's publisher is ended, and the callback server gets one
// stop (A's) and one start (B's) for the takeover.
func testFleetTakeover(t *testing.T, bin string) {
	r := testpeer.StartRedis(t)
	rc := fleetRedis(t, r)
	cb := startFleetCallback(t)
	a := startBox(t, bin, fleetBoxA, r, cb)
	b := startBox(t, bin, fleetBoxB, r, cb)

	pubA := publishEvFFmpeg(t, a.url("x", "k"))
	a.waitLog(t, "the publish on A", 1, pubA, msgIs("publish", "channel", "x"))
	startA := evApprovedStart(t, cb, "x")
	claim := waitClaim(t, rc, "x", fleetBoxA, startA.Reply.StreamID)
	if claim.Channel != "x" || claim.KeyHash != fleet.KeyHash("x", "k") || time.Since(claim.Started) > time.Minute {
		t.Errorf("claim %+v", claim)
	}
	if ttl := rc.PTTL(context.Background(), "rtmp:stream:x").Val(); ttl <= 0 || ttl > fleetTTL {
		t.Errorf("claim PTTL %v, want within %v", ttl, fleetTTL)
	}

	refused := publishRefusedFFmpeg(t, b.url("x", "other"))
	b.waitLog(t, "the refusal on B", 1, nil, msgIs("rejected", "channel", "x", "reason", "already publishing on "+fleetBoxA))
	if !strings.Contains(refused.Stderr.String(), "already publishing on "+fleetBoxA) {
		t.Errorf("ffmpeg does not show why it was refused:\n%s", refused.Stderr.String())
	}
	// The refused publish was approved by the callback first: its start
	// gets its stop.
	cb.WaitFor(t, "the stop of the refused publish", evWaitLimit, func(reqs []testpeer.CallbackRequest) bool {
		for _, r := range evDelivered(reqs, "x") {
			if r.Key == "other" && r.RTMPHost == fleetBoxB {
				return true
			}
		}
		return false
	})
	if pubA.Exited() {
		t.Fatalf("A's publisher ended after a refused publish on B:\n%s", pubA.Stderr.String())
	}
	before := len(cb.Requests())

	pubB := publishEvFFmpeg(t, b.url("x", "k"))
	b.waitLog(t, "the takeover on B", 1, pubB, msgIs("publish", "channel", "x"))
	pubA.Wait(t, evWaitLimit)
	a.waitLog(t, "A's unpublish", 1, nil, msgIs("unpublish", "channel", "x", "stream_id", startA.Reply.StreamID, "reason", "killed by control command"))
	var startB testpeer.CallbackRequest
	reqs := cb.WaitFor(t, "A's stop", evWaitLimit, func(reqs []testpeer.CallbackRequest) bool {
		return len(evDelivered(reqs, "x")) == 2
	})
	takeover := reqs[before:]
	starts, stops := evEvents(takeover, callback.EventStart, "x"), evEvents(takeover, callback.EventStop, "x")
	if len(starts) != 1 || len(stops) != 1 || starts[0].RTMPHost != fleetBoxB || stops[0].RTMPHost != fleetBoxA || stops[0].StreamID != startA.Reply.StreamID {
		t.Fatalf("the takeover's events, want one start from B and A's stop:\n%s", testpeer.FormatCallbackRequests(takeover))
	}
	startB = starts[0]
	waitClaim(t, rc, "x", fleetBoxB, startB.Reply.StreamID)
	evPlayMedia(t, b.addr, "x", "k")

	// Shut down: B's stop, and nothing else.
	b.terminate(t)
	a.terminate(t)
	checkEvStops(t, cb.Requests())
	if n := rc.Exists(context.Background(), "rtmp:stream:x", "rtmp:box:"+fleetBoxA, "rtmp:box:"+fleetBoxB).Val(); n != 0 {
		t.Errorf("%d fleet keys left after both boxes stopped", n)
	}
}

// testFleetDeadBox: box A is killed with SIGKILL while publishing X. Its
// claim and registry entry outlive it by the TTL: until then B refuses X,
// and takes it after.
func testFleetDeadBox(t *testing.T, bin string) {
	r := testpeer.StartRedis(t)
	rc := fleetRedis(t, r)
	a := startBox(t, bin, fleetBoxA, r, nil)
	b := startBox(t, bin, fleetBoxB, r, nil)

	pubA := publishEvFFmpeg(t, a.url("x", "k"))
	a.waitLog(t, "the publish on A", 1, pubA, msgIs("publish", "channel", "x"))
	waitClaim(t, rc, "x", fleetBoxA, "")
	var box fleet.BoxRecord
	testpeer.WaitFor(t, "A's registry entry with its publisher", evWaitLimit, func() bool {
		box = fleet.BoxRecord{}
		return getJSON(t, rc, "rtmp:box:"+fleetBoxA, &box) && box.Publishers == 1
	})
	checkBoxEntry(t, rc, fleetBoxA)

	a.proc.Signal(t, syscall.SIGKILL)
	<-a.proc.Done()
	killed := time.Now()

	// Within the TTL: still claimed, so refused.
	c, st, err := evPublish(t, b.addr, "x", "k2")
	if c != nil {
		c.Close()
	}
	if st.Code != publishBadName || st.Description != "already publishing on "+fleetBoxA {
		t.Fatalf("publish on B right after A died: %+v %v, want BadName: already publishing on %s", st, err, fleetBoxA)
	}
	if rc.Exists(context.Background(), "rtmp:stream:x").Val() != 1 {
		t.Fatal("the claim was gone when B refused: the test acted too late to tell")
	}

	// After the TTL: the claim and the entry expire, and B takes X.
	testpeer.WaitFor(t, "the dead box's claim to expire", evWaitLimit, func() bool {
		return rc.Exists(context.Background(), "rtmp:stream:x").Val() == 0
	})
	if gone := time.Since(killed); gone < fleetTTL/3 {
		t.Errorf("the claim was gone %v after A died, before the TTL could pass", gone)
	}
	pubB := publishEvFFmpeg(t, b.url("x", "k2"))
	b.waitLog(t, "the publish on B", 1, pubB, msgIs("publish", "channel", "x"))
	waitClaim(t, rc, "x", fleetBoxB, "")
	testpeer.WaitFor(t, "the dead box's entry to expire", evWaitLimit, func() bool {
		return rc.Exists(context.Background(), "rtmp:box:"+fleetBoxA).Val() == 0
	})
	b.terminate(t)
}

// checkBoxEntry checks the documented shape of a box's registry entry:
// exactly these fields, and a TTL.
func checkBoxEntry(t *testing.T, rc *redis.Client, host string) {
	t.Helper()
	var fields map[string]any
	if !getJSON(t, rc, "rtmp:box:"+host, &fields) {
		t.Fatalf("no registry entry for %s", host)
	}
	want := []string{"box", "publishers", "players", "bytes_in_per_second", "bytes_out_per_second", "draining", "updated"}
	if len(fields) != len(want) {
		t.Errorf("entry has %d fields, want %d: %v", len(fields), len(want), fields)
	}
	for _, name := range want {
		if _, ok := fields[name]; !ok {
			t.Errorf("entry lacks %s: %v", name, fields)
		}
	}
	if fields["box"] != host {
		t.Errorf("entry box %v, want %s", fields["box"], host)
	}
	if ttl := rc.PTTL(context.Background(), "rtmp:box:"+host).Val(); ttl <= 0 || ttl > fleetTTL {
		t.Errorf("entry PTTL %v, want within %v", ttl, fleetTTL)
	}
}

// testFleetRedisRestart: Redis restarts (empty) while A publishes X: A
// claims it again within a few seconds. While Redis is down B accepts X
// with another key (FLEET_REDIS_DOWN=accept); when Redis is back, the
// conflict ends B's newer publish, and A keeps X.
func testFleetRedisRestart(t *testing.T, bin string) {
	r := testpeer.StartRedis(t)
	rc := fleetRedis(t, r)
	a := startBox(t, bin, fleetBoxA, r, nil)
	b := startBox(t, bin, fleetBoxB, r, nil)

	pubA := publishEvFFmpeg(t, a.url("x", "k"))
	a.waitLog(t, "the publish on A", 1, pubA, msgIs("publish", "channel", "x"))
	waitClaim(t, rc, "x", fleetBoxA, "")

	r.Stop()
	a.waitLog(t, "A's outage", 1, nil, msgIs("fleet: Redis unreachable; publishes go on unclaimed until it returns"))
	pubB := publishEvFFmpeg(t, b.url("x", "k2"))
	b.waitLog(t, "B's unclaimed publish", 1, pubB, msgIs("publish", "channel", "x"))

	r.Restart()
	restarted := time.Now()
	waitClaim(t, rc, "x", fleetBoxA, "")
	if d := time.Since(restarted); d > 2*fleetTTL {
		t.Errorf("claimed again %v after Redis returned, want within a few seconds", d)
	}
	pubB.Wait(t, evWaitLimit)
	b.waitLog(t, "B's newer publish ended", 1, nil, msgIs("unpublish", "channel", "x"))
	if pubA.Exited() {
		t.Fatalf("A's older publish ended:\n%s", pubA.Stderr.String())
	}
	// The claim stays A's.
	waitClaim(t, rc, "x", fleetBoxA, "")
	lines, _ := a.log.matching(func(l evLine) bool { return strings.HasPrefix(l.fields["msg"], "fleet: conflict") })
	blines, _ := b.log.matching(func(l evLine) bool { return strings.HasPrefix(l.fields["msg"], "fleet: conflict") })
	if len(lines)+len(blines) == 0 {
		t.Error("the conflict was not logged by either box")
	}
	evPlayMedia(t, a.addr, "x", "k")
	// The outage is logged once, not once per failed dial by the Redis
	// client library.
	for _, s := range []*evServer{a, b} {
		if raw, _ := s.log.matching(func(l evLine) bool { return strings.HasPrefix(l.raw, "redis: ") }); len(raw) > 0 {
			t.Errorf("the Redis client library's own lines in the log (%d), such as: %s", len(raw), raw[0].raw)
		}
	}
}

// dialCapsEx connects to channel on addr with the Go client, announcing
// capsEx in connect, and creates a stream.
func dialCapsEx(t *testing.T, addr, channel string, capsEx float64) *client.Conn {
	t.Helper()
	c, err := client.Dial(addr, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(evWaitLimit))
	if err := c.ConnectWith(channel, "rtmp://"+addr+"/"+channel, amf.Property{Key: "capsEx", Value: capsEx}); err != nil {
		t.Fatalf("connect: %v", err)
	}
	if _, err := c.CreateStream(); err != nil {
		t.Fatal(err)
	}
	return c
}

// readyz returns the status of GET /readyz on the admin listener.
func readyz(t *testing.T, base string) int {
	t.Helper()
	res, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// testFleetDrain: `rtmp-server drain` drains box A: an ffmpeg publish is
// refused with "server draining", the live ffmpeg stream goes on playing,
// the publisher that announced the Reconnect capability gets a
// NetConnection.Connect.ReconnectRequest, /readyz answers 503 and the
// registry says draining. undrain> over Redis ends it; DRAIN=YES on reload
// drains again.
func testFleetDrain(t *testing.T, bin string) {
	r := testpeer.StartRedis(t)
	rc := fleetRedis(t, r)
	a := startBox(t, bin, fleetBoxA, r, nil, "ADMIN_ADDRESS=127.0.0.1:0")
	m := regexp.MustCompile(`msg=listening proto=http addr=(\S+)`).FindStringSubmatch(a.log.String())
	if m == nil {
		t.Fatalf("no admin listener in the log:\n%s", a.log.String())
	}
	admin := "http://" + m[1]
	if code := readyz(t, admin); code != http.StatusOK {
		t.Fatalf("/readyz %d before draining, want 200", code)
	}

	pub := publishEvFFmpeg(t, a.url("live", "k"))
	a.waitLog(t, "the publish", 1, pub, msgIs("publish", "channel", "live"))
	able := dialCapsEx(t, a.addr, "able", 1)
	if st, err := able.Publish("k"); err != nil {
		t.Fatal(st, err)
	}

	cli := exec.Command(bin, "drain", "--pid", strconv.Itoa(a.proc.Cmd.Process.Pid))
	if out, err := cli.CombinedOutput(); err != nil || !strings.Contains(string(out), "draining") {
		t.Fatalf("rtmp-server drain: %v\n%s", err, out)
	}
	a.waitLog(t, "the drain", 1, nil, msgIs("draining: new publishes refused; live streams go on", "source", "signal user defined signal 1", "reconnect_requests", "1"))
	for {
		cmd, err := able.ReadCommand()
		if err != nil {
			t.Fatalf("waiting for the reconnect request: %v", err)
		}
		if st := cmd.StatusOf(); cmd.Name == "onStatus" && st.Code == "NetConnection.Connect.ReconnectRequest" {
			break
		}
	}
	refused := publishRefusedFFmpeg(t, a.url("other", "k"))
	if !strings.Contains(refused.Stderr.String(), "Server draining") {
		t.Errorf("ffmpeg does not show the drain:\n%s", refused.Stderr.String())
	}
	a.waitLog(t, "the refusal", 1, nil, msgIs("rejected", "channel", "other", "reason", "server draining"))
	evPlayMedia(t, a.addr, "live", "k")
	if pub.Exited() {
		t.Fatalf("the live publisher ended while draining:\n%s", pub.Stderr.String())
	}
	if code := readyz(t, admin); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz %d while draining, want 503", code)
	}
	var box fleet.BoxRecord
	testpeer.WaitFor(t, "draining in the registry", evWaitLimit, func() bool {
		box = fleet.BoxRecord{}
		return getJSON(t, rc, "rtmp:box:"+fleetBoxA, &box) && box.Draining
	})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rc.Publish(ctx, evCommandChannel, "undrain>"+fleetBoxA).Err(); err != nil {
		t.Fatal(err)
	}
	a.waitLog(t, "the undrain", 1, nil, msgIs("drain ended: new publishes taken", "source", "redis"))
	if c, st, err := evPublish(t, a.addr, "other", "k"); err != nil || st.Code != publishStart {
		t.Fatalf("publish after undrain: %+v %v", st, err)
	} else {
		c.Close()
	}
	if code := readyz(t, admin); code != http.StatusOK {
		t.Errorf("/readyz %d after undrain, want 200", code)
	}
	testpeer.WaitFor(t, "not draining in the registry", evWaitLimit, func() bool {
		box = fleet.BoxRecord{}
		return getJSON(t, rc, "rtmp:box:"+fleetBoxA, &box) && !box.Draining
	})

	// DRAIN=YES on reload.
	f, err := os.OpenFile(a.cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("DRAIN=YES\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	a.proc.Signal(t, syscall.SIGHUP)
	a.waitLog(t, "the drain on reload", 1, nil, msgIs("draining: new publishes refused; live streams go on", "source", "reload: DRAIN=YES"))
	c, st, _ := evPublish(t, a.addr, "third", "k")
	if c != nil {
		c.Close()
	}
	if st.Code != publishBadName || !strings.Contains(st.Description, "draining") {
		t.Fatalf("publish after DRAIN=YES reload: %+v, want refused while draining", st)
	}
	a.terminate(t)
}

// TestDrainStatus: DRAIN=YES drains from start-up and STATUS= says so;
// SIGUSR2 ends the drain and SIGUSR1 drains again, each shown in STATUS=.
// No fleet is needed to drain.
func TestDrainStatus(t *testing.T) {
	t.Parallel()
	bin := sysBinary(t)
	cfgPath := filepath.Join(t.TempDir(), "rtmp-server.env")
	ln := testpeer.Listen(t)
	writeEnv(t, cfgPath, fmt.Sprintf("RTMP_PORT=%d", ln.Addr().(*net.TCPAddr).Port), "BIND_ADDRESS=127.0.0.1", "DRAIN=YES", "ADMIN_ADDRESS=off")
	notify := newNotifySocket(t)
	p := startServing(t, []string{"NOTIFY_SOCKET=" + notify.path}, ln, nil, bin, "--config", cfgPath)

	notify.expect(t, "READY=1", 15*time.Second)
	if st := notify.expect(t, "STATUS=", 15*time.Second); !strings.Contains(st, "; draining") {
		t.Fatalf("STATUS %q with DRAIN=YES, want it to say draining", st)
	}
	c, st, _ := evPublish(t, ln.Addr().String(), "live", "k")
	if c != nil {
		c.Close()
	}
	if st.Code != publishBadName || !strings.Contains(st.Description, "draining") {
		t.Fatalf("publish with DRAIN=YES: %+v, want refused while draining", st)
	}
	p.Signal(t, syscall.SIGUSR2)
	expectStatus(t, notify, "STATUS=taking publishes")
	p.Signal(t, syscall.SIGUSR1)
	expectStatus(t, notify, "STATUS=draining: new publishes refused")
	p.Signal(t, syscall.SIGTERM)
	if code := p.ExitCode(t, evExitLimit); code != 0 {
		t.Fatalf("exit status %d after SIGTERM", code)
	}
}

// expectStatus reads STATUS= notifications until one is want (a periodic
// report may come first).
func expectStatus(t *testing.T, notify *notifySocket, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st := notify.expect(t, "STATUS=", time.Until(deadline))
		if st == want {
			return
		}
	}
}
