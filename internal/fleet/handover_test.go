package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtmp-server/rtmp-server/internal/client"
	"github.com/rtmp-server/rtmp-server/internal/server"
	"github.com/rtmp-server/rtmp-server/internal/servertest"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// syncBuffer is a log buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fleetBox is one process of a box: a server whose Admission is its Fleet.
type fleetBox struct {
	srv   *server.Server
	fleet *Fleet
	ln    net.Listener
	logs  *syncBuffer
}

// newFleetBox returns a server of box host on r with its started Fleet;
// serve starts serving it.
func newFleetBox(t *testing.T, r *testpeer.Redis, host string, ttl time.Duration) *fleetBox {
	t.Helper()
	opts := server.DefaultOptions()
	opts.MaxIPConnections = 0
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := server.New(opts, log)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := newTestFleet(t, r, host, ttl, func(c *Config) { c.Streams = srv; c.Logger = log })
	srv.Admission = f
	f.Start()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of %s:\n%s", host, logs.String())
		}
	})
	return &fleetBox{srv: srv, fleet: f, logs: logs}
}

func (b *fleetBox) serve(t *testing.T) string {
	b.ln = testpeer.Listen(t)
	servertest.Serve(t, b.srv, b.ln, server.ErrServerClosed)
	return b.ln.Addr().String()
}

// handOver hands old's sessions to next as systemd's store would (the
// sockets duplicated in process); between saving and adopting, meanwhile
// runs (another box acting during the restart). The old process then
// ends as the daemon's does: Done, KeepEntry, Shutdown, Close.
func handOver(t *testing.T, old, next *fleetBox, meanwhile func()) server.Resumed {
	t.Helper()
	ho, err := old.srv.HandOver(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	files := make([]*os.File, 0, len(ho.Files))
	for _, f := range ho.Files {
		fd, err := unix.Dup(int(f.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, os.NewFile(uintptr(fd), "rtmp-handover"))
	}
	if meanwhile != nil {
		meanwhile()
	}
	res := next.srv.Adopt(bytes.NewReader(ho.State), files)
	ho.Done()
	old.fleet.KeepEntry()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := old.srv.Shutdown(ctx); err != nil && !errors.Is(err, server.ErrServerClosed) {
		t.Fatal(err)
	}
	if err := old.fleet.Close(); err != nil {
		t.Fatal(err)
	}
	return res
}

// publishTo publishes channel with key on the server at addr.
func publishTo(t *testing.T, addr, channel, key string) *client.Conn {
	t.Helper()
	c, err := servertest.DialStream(t, addr, channel)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Publish(key)
	if err != nil || st.Code != "NetStream.Publish.Start" {
		t.Fatalf("publish: %+v, %v; want NetStream.Publish.Start", st, err)
	}
	return c
}

// TestHandOverKeepsClaim: a publish handed to the next process of the box
// keeps its claim, with the same value, refreshed by the new process once
// the old one is gone; the old one deletes neither the claim nor the
// registry entry.
func TestHandOverKeepsClaim(t *testing.T) {
	r := testpeer.StartRedis(t)
	rc := testClient(t, r)
	const ttl = time.Second
	old := newFleetBox(t, r, "box-a", ttl)
	pub := publishTo(t, old.serve(t), "x", "k")
	value := rc.Get(ctx(t), "t:stream:x").Val()
	if value == "" {
		t.Fatal("no claim after the publish")
	}
	next := newFleetBox(t, r, "box-a", ttl)
	res := handOver(t, old, next, nil)
	next.serve(t)
	if res.Publishers != 1 || res.Failed != 0 {
		t.Fatalf("resumed %+v, want the publisher", res)
	}
	if got := rc.Get(ctx(t), "t:stream:x").Val(); got != value {
		t.Fatalf("claim after the hand-over %q, want the same value %q", got, value)
	}
	if rc.Exists(ctx(t), "t:box:box-a").Val() != 1 {
		t.Fatal("the old process deleted the box's registry entry")
	}
	// Only the new process refreshes now: the claim outlives its TTL.
	gone := time.Now()
	testpeer.WaitFor(t, "the claim to outlive three TTLs", 10*time.Second, func() bool {
		got := rc.Get(context.Background(), "t:stream:x").Val()
		if got != value {
			t.Fatalf("claim %q, want %q kept", got, value)
		}
		return time.Since(gone) > 3*ttl
	})
	var rec StreamRecord
	if err := json.Unmarshal([]byte(value), &rec); err != nil {
		t.Fatal(err)
	}
	if held, ok := next.fleet.Claims()[rec]; !ok || !held {
		t.Fatalf("the new process's claims %v, want %+v held", next.fleet.Claims(), rec)
	}
	if len(old.fleet.Claims()) != 0 {
		t.Fatalf("the old process still keeps %v", old.fleet.Claims())
	}
	// The publisher goes on: its media reaches the new process's hub.
	if err := pub.WriteMedia(9, 0, []byte{0x17, 0, 0, 0, 0, 1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	testpeer.WaitFor(t, "the publisher's media", 10*time.Second, func() bool {
		return next.srv.Hub().Stats().BytesIn > 0
	})
}

// TestHandOverClaimMeanwhile: a claim that expired during the hand-over is
// set again by the new process; one that another box took meanwhile ends
// the adopted publish, logged, and is left to that box.
func TestHandOverClaimMeanwhile(t *testing.T) {
	r := testpeer.StartRedis(t)
	rc := testClient(t, r)
	other, _ := json.Marshal(StreamRecord{Box: "box-b", Channel: "x", StreamID: "sid-b", Started: time.Now().UTC(), KeyHash: KeyHash("x", "k")})
	for _, tc := range []struct {
		name      string
		meanwhile func()
		ended     bool
	}{
		{"expired", func() { rc.Del(context.Background(), "t:stream:x") }, false},
		{"taken", func() { rc.Set(context.Background(), "t:stream:x", other, time.Minute) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc.Del(ctx(t), "t:stream:x")
			old := newFleetBox(t, r, "box-a", 3*time.Second)
			pub := publishTo(t, old.serve(t), "x", "k")
			value := rc.Get(ctx(t), "t:stream:x").Val()
			next := newFleetBox(t, r, "box-a", 3*time.Second)
			res := handOver(t, old, next, tc.meanwhile)
			next.serve(t)
			got := rc.Get(ctx(t), "t:stream:x").Val()
			if !tc.ended {
				if res.Publishers != 1 || res.Failed != 0 || got != value {
					t.Fatalf("resumed %+v, claim %q; want the publisher resumed and its claim %q set again", res, got, value)
				}
				if ttl := rc.PTTL(ctx(t), "t:stream:x").Val(); ttl <= 0 {
					t.Fatalf("claim set again with PTTL %v, want the TTL", ttl)
				}
				return
			}
			if res.Publishers != 0 || res.Failed != 1 {
				t.Fatalf("resumed %+v, want the publisher ended", res)
			}
			if got != string(other) {
				t.Fatalf("claim %q, want box-b's left alone", got)
			}
			if !strings.Contains(next.logs.String(), "another box claimed the channel during the hand-over") {
				t.Fatalf("no log line says why the publish ended:\n%s", next.logs.String())
			}
			if err := pub.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
				t.Fatal(err)
			}
			for {
				if _, err := pub.ReadMessage(); err != nil {
					if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, unix.ECONNRESET) {
						t.Fatalf("publisher: %v, want its connection closed", err)
					}
					break
				}
			}
		})
	}
}

// TestCarryOverNotReleased: once carried over, a claim is neither
// refreshed nor deleted by this process: its release leaves it, Close
// keeps the registry entry after KeepEntry. TakeBack refuses a value that
// is not this box's claim of the publish.
func TestCarryOverNotReleased(t *testing.T) {
	r := testpeer.StartRedis(t)
	rc := testClient(t, r)
	a, _ := newTestFleet(t, r, "box-a", 3*time.Second)
	a.Start()
	ev := event("x", "k", "sid-1")
	release, err := a.Admit(ctx(t), ev)
	if err != nil {
		t.Fatal(err)
	}
	value, ok := a.Token(ev)
	if !ok || value != rc.Get(ctx(t), "t:stream:x").Val() {
		t.Fatalf("Token = %q, %v; want the claim's value", value, ok)
	}
	if _, ok := a.Token(event("y", "k", "sid-2")); ok {
		t.Fatal("Token of a publish with no claim reported one")
	}
	a.CarriedOver(ev)
	release()
	testpeer.WaitFor(t, "the box entry", 10*time.Second, func() bool {
		return rc.Exists(context.Background(), "t:box:box-a").Val() == 1
	})
	a.KeepEntry()
	if err := a.Close(); err != nil { // waits for the release
		t.Fatal(err)
	}
	if got := rc.Get(ctx(t), "t:stream:x").Val(); got != value {
		t.Fatalf("claim after the release of a carried claim: %q, want %q kept", got, value)
	}
	if rc.Exists(ctx(t), "t:box:box-a").Val() != 1 {
		t.Fatal("Close deleted the registry entry after KeepEntry")
	}

	b, _ := newTestFleet(t, r, "box-b", 3*time.Second)
	if _, err := b.TakeBack(ctx(t), ev, value); err == nil {
		t.Fatal("box-b took back box-a's claim")
	}
	a2, _ := newTestFleet(t, r, "box-a", 3*time.Second)
	if _, err := a2.TakeBack(ctx(t), event("x", "other-key", "sid-1"), value); err == nil {
		t.Fatal("a claim was taken back for a publish with another key")
	}
	if _, err := a2.TakeBack(ctx(t), ev, value); err != nil {
		t.Fatalf("TakeBack of the carried claim: %v", err)
	}
}

// TestTakeBackRedisDown: with Redis unreachable the handed-over publishes
// go on unclaimed; when Redis returns their claims are set again with the
// carried values.
func TestTakeBackRedisDown(t *testing.T) {
	r := testpeer.StartRedis(t)
	a, _ := newTestFleet(t, r, "box-a", 3*time.Second)
	evs := []server.PublishEvent{event("x", "k", "sid-x"), event("y", "k", "sid-y")}
	values := make([]string, len(evs))
	for i, ev := range evs {
		if _, err := a.Admit(ctx(t), ev); err != nil {
			t.Fatal(err)
		}
		values[i], _ = a.Token(ev)
	}
	r.Stop()
	b, _ := newTestFleet(t, r, "box-a", 3*time.Second)
	if _, err := b.TakeBack(ctx(t), evs[0], values[0]); err != nil {
		t.Fatalf("TakeBack with Redis down: %v, want the publish to go on", err)
	}
	if _, err := b.TakeBack(ctx(t), evs[1], values[1]); err != nil {
		t.Fatalf("TakeBack with Redis down: %v, want the publish to go on", err)
	}
	r.Restart()
	rc := testClient(t, r)
	b.Start()
	for i, ev := range evs {
		testpeer.WaitFor(t, "the claim back", 10*time.Second, func() bool {
			return rc.Get(context.Background(), "t:stream:"+ev.Channel).Val() == values[i]
		})
	}
}
