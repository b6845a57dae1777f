package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtmp-server/rtmp-server/internal/server"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

const testCommands = "fleet_test_commands"

// closedStreams records the publications a Fleet ends.
type closedStreams struct {
	mu     sync.Mutex
	closed []string // guarded by mu: "channel|stream id"
}

func (s *closedStreams) CloseStream(channel, streamID string) (bool, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = append(s.closed, channel+"|"+streamID)
	return true, 0
}

func (s *closedStreams) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.closed...)
}

// newTestFleet returns box host's Fleet on r, closed when the test ends.
func newTestFleet(t *testing.T, r *testpeer.Redis, host string, ttl time.Duration, mod ...func(*Config)) (*Fleet, *closedStreams) {
	t.Helper()
	streams := &closedStreams{}
	cfg := Config{Host: host, Prefix: "t:", TTL: ttl, CommandChannel: testCommands, Streams: streams}
	for _, m := range mod {
		m(&cfg)
	}
	opts, err := RedisOptions(r.Addr(), "", false)
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f, streams
}

// testClient is a plain Redis client for the test's own looks.
func testClient(t *testing.T, r *testpeer.Redis) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), Protocol: 2})
	t.Cleanup(func() { c.Close() })
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func record(t *testing.T, rc *redis.Client, key string) StreamRecord {
	t.Helper()
	raw, err := rc.Get(ctx(t), key).Result()
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	var rec StreamRecord
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		t.Fatalf("GET %s: %v: %s", key, err, raw)
	}
	return rec
}

func event(channel, key, streamID string) server.PublishEvent {
	return server.PublishEvent{Session: 1, Channel: channel, Key: key, StreamID: streamID}
}

// TestClaimAndRelease: Admit claims the channel with a record naming the
// box, the stream id, the start and the key's hash, under the TTL; the
// release deletes it.
func TestClaimAndRelease(t *testing.T) {
	r := testpeer.StartRedis(t)
	rc := testClient(t, r)
	a, _ := newTestFleet(t, r, "box-a", 3*time.Second)

	before := time.Now()
	release, err := a.Admit(ctx(t), event("x", "secret", "sid-1"))
	if err != nil {
		t.Fatal(err)
	}
	rec := record(t, rc, "t:stream:x")
	if rec.Box != "box-a" || rec.Channel != "x" || rec.StreamID != "sid-1" || rec.KeyHash != KeyHash("x", "secret") ||
		rec.Started.Before(before.Add(-time.Second)) || rec.Started.After(time.Now()) {
		t.Errorf("record %+v", rec)
	}
	if ttl := rc.PTTL(ctx(t), "t:stream:x").Val(); ttl <= 0 || ttl > 3*time.Second {
		t.Errorf("PTTL %v, want within the TTL of 3s", ttl)
	}
	raw := rc.Get(ctx(t), "t:stream:x").Val()
	if strings.Contains(raw, "secret") {
		t.Errorf("the record shows the stream key: %s", raw)
	}
	release()
	release() // a second call does nothing
	testpeer.WaitFor(t, "the release", 10*time.Second, func() bool {
		return rc.Exists(context.Background(), "t:stream:x").Val() == 0
	})
}

// TestRefreshOnlyExtendsOwnClaim: a box whose claim was taken by another
// box's older publish (while it could not reach Redis) neither extends nor
// replaces that claim when it refreshes, and ends its own newer publish;
// a release of the lost claim leaves the other's alone. Its own claim is
// extended.
func TestRefreshOnlyExtendsOwnClaim(t *testing.T) {
	r := testpeer.StartRedis(t)
	rc := testClient(t, r)
	a, closed := newTestFleet(t, r, "box-a", 3*time.Second)

	release, err := a.Admit(ctx(t), event("x", "k", "sid-a"))
	if err != nil {
		t.Fatal(err)
	}
	// Its own claim is extended.
	if err := rc.PExpire(ctx(t), "t:stream:x", 500*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	if !a.refreshClaims() {
		t.Fatal("refresh failed")
	}
	if ttl := rc.PTTL(ctx(t), "t:stream:x").Val(); ttl < 2*time.Second {
		t.Fatalf("own claim's PTTL after a refresh %v, want about 3s", ttl)
	}

	// Box B's publish, older than A's, holds the channel now.
	other, _ := json.Marshal(StreamRecord{Box: "box-b", Channel: "x", StreamID: "sid-b", Started: time.Now().Add(-time.Minute).UTC(), KeyHash: KeyHash("x", "k")})
	if err := rc.Set(ctx(t), "t:stream:x", other, 1500*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	if !a.refreshClaims() {
		t.Fatal("refresh failed")
	}
	if got := rc.Get(ctx(t), "t:stream:x").Val(); got != string(other) {
		t.Fatalf("the refresh of a lost claim changed the other box's: %s", got)
	}
	if ttl := rc.PTTL(ctx(t), "t:stream:x").Val(); ttl > 1500*time.Millisecond {
		t.Fatalf("the refresh of a lost claim extended the other box's: PTTL %v", ttl)
	}
	if got := closed.list(); len(got) != 1 || got[0] != "x|sid-a" {
		t.Fatalf("ended %q, want this box's newer publish x|sid-a", got)
	}
	release()
	a.releases.Wait()
	if got := rc.Get(ctx(t), "t:stream:x").Val(); got != string(other) {
		t.Fatalf("the release of a lost claim deleted the other box's: %q", got)
	}
}

// TestConflictEndsNewer: when the other box's publish is the newer one, the
// box claims the channel back and asks that box, over the command channel,
// to end it.
func TestConflictEndsNewer(t *testing.T) {
	r := testpeer.StartRedis(t)
	rc := testClient(t, r)
	a, closed := newTestFleet(t, r, "box-a", 3*time.Second)
	sub := rc.Subscribe(ctx(t), testCommands)
	defer sub.Close()
	if _, err := sub.Receive(ctx(t)); err != nil {
		t.Fatal(err)
	}

	if _, err := a.Admit(ctx(t), event("x", "k", "sid-a")); err != nil {
		t.Fatal(err)
	}
	newerRec, _ := json.Marshal(StreamRecord{Box: "box-b", Channel: "x", StreamID: "sid-b", Started: time.Now().Add(time.Second).UTC(), KeyHash: KeyHash("x", "other")})
	if err := rc.Set(ctx(t), "t:stream:x", newerRec, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if !a.refreshClaims() {
		t.Fatal("refresh failed")
	}
	if rec := record(t, rc, "t:stream:x"); rec.Box != "box-a" || rec.StreamID != "sid-a" {
		t.Fatalf("claim %+v, want box-a's back", rec)
	}
	msg, err := sub.ReceiveMessage(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Payload != "close-stream>x|sid-b" {
		t.Fatalf("command %q, want close-stream>x|sid-b", msg.Payload)
	}
	if got := closed.list(); len(got) != 0 {
		t.Fatalf("ended its own older publish: %q", got)
	}
}

// TestAdmitHeldElsewhere: a publish of a channel another box holds with
// another key is refused naming that box; with the same key, the holder
// is asked to end its session, and the publish claims the channel once the
// holder lets go; if it never does, the publish is refused after
// TakeoverWait.
func TestAdmitHeldElsewhere(t *testing.T) {
	r := testpeer.StartRedis(t)
	rc := testClient(t, r)
	a, _ := newTestFleet(t, r, "box-a", 10*time.Second)
	b, _ := newTestFleet(t, r, "box-b", 10*time.Second)

	releaseA, err := a.Admit(ctx(t), event("x", "k", "sid-a"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Admit(ctx(t), event("x", "another", "sid-b1"))
	var refusal *Refusal
	if !errors.As(err, &refusal) || !errors.Is(err, ErrRefused) || refusal.Reason != "already publishing on box-a" {
		t.Fatalf("another key: %v, want a refusal: already publishing on box-a", err)
	}

	// Box A's side: end the session named by close-stream.
	sub := rc.Subscribe(ctx(t), testCommands)
	defer sub.Close()
	if _, err := sub.Receive(ctx(t)); err != nil {
		t.Fatal(err)
	}
	asked := make(chan string, 1)
	go func() {
		msg, err := sub.ReceiveMessage(context.Background())
		if err != nil {
			asked <- err.Error()
			return
		}
		asked <- msg.Payload
		releaseA()
	}()
	if _, err := b.Admit(ctx(t), event("x", "k", "sid-b2")); err != nil {
		t.Fatalf("same key: %v", err)
	}
	if got := <-asked; got != "close-stream>x|sid-a" {
		t.Fatalf("command %q, want close-stream>x|sid-a", got)
	}
	if rec := record(t, rc, "t:stream:x"); rec.Box != "box-b" || rec.StreamID != "sid-b2" {
		t.Fatalf("claim %+v, want box-b's", rec)
	}
}

// TestRedisDown: with Redis unreachable a publish is accepted unclaimed
// (accept) or refused (refuse); when Redis is back, the refresh claims
// the live stream again.
func TestRedisDown(t *testing.T) {
	r := testpeer.StartRedis(t)
	accept, _ := newTestFleet(t, r, "box-a", 3*time.Second)
	refuse, _ := newTestFleet(t, r, "box-b", 3*time.Second, func(c *Config) { c.RefuseWhenDown = true })
	r.Stop()

	_, err := refuse.Admit(ctx(t), event("y", "k", "sid-y"))
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("refuse, Redis down: %v, want a refusal", err)
	}
	if _, err := accept.Admit(ctx(t), event("x", "k", "sid-x")); err != nil {
		t.Fatalf("accept, Redis down: %v", err)
	}
	if !accept.RedisDown() {
		t.Error("RedisDown() = false with Redis stopped")
	}
	for rec, claimed := range accept.Claims() {
		if claimed {
			t.Errorf("%+v claimed with Redis down", rec)
		}
	}

	r.Restart()
	rc := testClient(t, r)
	accept.Start()
	testpeer.WaitFor(t, "the claim back", 10*time.Second, func() bool {
		return rc.Exists(context.Background(), "t:stream:x").Val() == 1
	})
	if rec := record(t, rc, "t:stream:x"); rec.Box != "box-a" || rec.StreamID != "sid-x" {
		t.Fatalf("claim %+v", rec)
	}
	testpeer.WaitFor(t, "RedisDown() false", 10*time.Second, func() bool { return !accept.RedisDown() })
}

// TestRegistry: the box's entry holds its load as JSON under the TTL,
// follows a Touch, and is removed by Close.
func TestRegistry(t *testing.T) {
	r := testpeer.StartRedis(t)
	rc := testClient(t, r)
	var mu sync.Mutex
	load := Load{Publishers: 2, Players: 5, BytesIn: 1000, BytesOut: 5000}
	f, _ := newTestFleet(t, r, "box-a", 3*time.Second, func(c *Config) {
		c.Load = func() Load {
			mu.Lock()
			defer mu.Unlock()
			return load
		}
	})
	f.Start()
	var rec BoxRecord
	get := func() bool {
		raw, err := rc.Get(context.Background(), "t:box:box-a").Result()
		if err != nil {
			return false
		}
		var fields map[string]any
		if err := json.Unmarshal([]byte(raw), &fields); err != nil {
			t.Fatalf("%v: %s", err, raw)
		}
		for _, name := range []string{"box", "publishers", "players", "bytes_in_per_second", "bytes_out_per_second", "draining", "updated"} {
			if _, ok := fields[name]; !ok {
				t.Fatalf("entry without %s: %s", name, raw)
			}
		}
		rec = BoxRecord{}
		return json.Unmarshal([]byte(raw), &rec) == nil
	}
	testpeer.WaitFor(t, "the entry", 10*time.Second, get)
	if rec.Box != "box-a" || rec.Publishers != 2 || rec.Players != 5 || rec.Draining {
		t.Errorf("entry %+v", rec)
	}
	if ttl := rc.PTTL(ctx(t), "t:box:box-a").Val(); ttl <= 0 || ttl > 3*time.Second {
		t.Errorf("PTTL %v, want within 3s", ttl)
	}
	mu.Lock()
	load.Draining = true
	mu.Unlock()
	f.Touch()
	testpeer.WaitFor(t, "draining in the entry", 10*time.Second, func() bool { return get() && rec.Draining })

	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if n := rc.Exists(ctx(t), "t:box:box-a").Val(); n != 0 {
		t.Error("the entry is still there after Close")
	}
}
