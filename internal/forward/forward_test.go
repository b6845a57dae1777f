package forward_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/forward"
	"github.com/rtmp-server/rtmp-server/internal/server"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// TestForwardTargetRestart stops the target for 5 s while a publish is
// forwarded to it: the forward comes back once the target is up again
// (backoff 1 s doubling, as configured by default), a player on the target
// gets the stream again, and a player on the origin sees every frame, on
// time, throughout.
func TestForwardTargetRestart(t *testing.T) {
	t.Parallel()
	ln := testpeer.Listen(t)
	targetAddr := ln.Addr().String()
	target := newNode(t, nil)
	served := make(chan error, 1)
	go func() { served <- target.srv.Serve(ln) }()

	origin := startNode(t, forwardTo(targetAddr))
	origin.fwd.MinBackoff = forward.MinBackoff
	watcher, err := play(t, origin.addr, "live", "k")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := publish(t, origin.addr, "live", "k", 40*time.Millisecond, 2000, 25)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	pubErr := make(chan error, 1)
	go func() { pubErr <- pub.stream(ctx) }()
	defer func() {
		stop()
		if err := <-pubErr; err != nil {
			t.Errorf("publisher: %v", err)
		}
	}()
	origin.waitLive(t)
	before, err := play(t, targetAddr, "live", "k")
	if err != nil {
		t.Fatal(err)
	}
	testpeer.WaitFor(t, "frames on the target", waitLimit, func() bool { return len(before.got()) > 10 })

	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := target.srv.Shutdown(sctx); err != nil {
		t.Fatalf("target shutdown: %v", err)
	}
	cancel()
	if err := <-served; err != server.ErrServerClosed {
		t.Fatalf("target Serve: %v", err)
	}
	testpeer.WaitFor(t, "the forward retrying", waitLimit, func() bool { return origin.forward(t).State == forward.StateRetrying })
	outage := time.NewTimer(5 * time.Second)
	select {
	case <-outage.C:
	case err := <-pubErr:
		t.Fatalf("publisher during the outage: %v", err)
	}
	lastBefore := pub.count()

	restarted := newNode(t, nil)
	servertestServe(t, restarted, listenOn(t, targetAddr))
	testpeer.WaitFor(t, "the forward live again", waitLimit, func() bool { return origin.forward(t).State == forward.StateLive })
	if st := origin.forward(t); st.Reconnects == 0 {
		t.Errorf("forward status %+v: want reconnects counted", st)
	}
	after, err := play(t, targetAddr, "live", "k")
	if err != nil {
		t.Fatal(err)
	}
	testpeer.WaitFor(t, "frames on the restarted target", waitLimit, func() bool {
		f := after.got()
		return len(f) > 10 && f[len(f)-1] > lastBefore
	})

	// The origin's player: every frame, in order, never more than 1 s apart.
	stop()
	if err := <-pubErr; err != nil {
		t.Fatalf("publisher: %v", err)
	}
	pubErr <- nil
	last := pub.count() - 1
	testpeer.WaitFor(t, "the last frame at the origin's player", waitLimit, func() bool { return watcher.has(last) })
	for i, n := range watcher.got() {
		if n != i {
			t.Fatalf("origin's player: frame %d is number %d: a gap", i, n)
		}
	}
	if gap := watcher.maxGap(); gap > time.Second {
		t.Errorf("origin's player waited %v between two frames", gap)
	}
	t.Logf("%d frames; origin's player's longest wait %v; forward %+v", pub.count(), watcher.maxGap(), origin.forward(t))
}

// TestForwardNeverReadingTarget forwards to a target that stops reading
// once the publish has started: the forward's queue skips to keyframes,
// while the publisher is never slowed and the origin's players get every
// frame on time.
func TestForwardNeverReadingTarget(t *testing.T) {
	t.Parallel()
	target := startNode(t, nil)
	stuck := stallingProxy(t, target.addr)
	origin := startNode(t, forwardTo(stuck))
	origin.fwd.WriteTimeout = time.Minute // stays stuck for the whole test

	const players = 3
	var watchers []*recorder
	for range players {
		r, err := play(t, origin.addr, "live", "k")
		if err != nil {
			t.Fatal(err)
		}
		watchers = append(watchers, r)
	}
	// 2 MB/s: the target's socket fills within a few seconds.
	const interval, size, gop = 10 * time.Millisecond, 20000, 50
	pub, err := publish(t, origin.addr, "live", "k", interval, size, gop)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	pubErr := make(chan error, 1)
	start := time.Now()
	go func() { pubErr <- pub.stream(ctx) }()
	testpeer.WaitFor(t, "the forward skipping to keyframes", waitLimit, func() bool { return origin.forward(t).Skips > 0 })
	skippedAt := pub.count()
	testpeer.WaitFor(t, "more frames", waitLimit, func() bool { return watchers[0].has(skippedAt + 2*gop) })
	stop()
	if err := <-pubErr; err != nil {
		t.Fatalf("publisher: %v", err)
	}
	elapsed := time.Since(start)
	sent := pub.count()
	// The publisher kept its pace: its writes never waited on the target
	// (which takes nothing for the rest of the test). The margins allow
	// for a loaded machine; a forward on the publisher's path stalls it
	// for good.
	if want := time.Duration(sent) * interval; elapsed > 3*want {
		t.Errorf("publishing %d frames took %v, want about %v", sent, elapsed, want)
	}
	for i, w := range watchers {
		testpeer.WaitFor(t, "every frame at the origin's players", waitLimit, func() bool { return w.has(sent - 1) })
		for j, n := range w.got() {
			if n != j {
				t.Fatalf("origin's player %d: frame %d is number %d: a gap", i, j, n)
			}
		}
		if gap := w.maxGap(); gap > 2*time.Second {
			t.Errorf("origin's player %d waited %v between two frames", i, gap)
		}
	}
	st := origin.forward(t)
	t.Logf("%d frames of %d bytes in %v (%.1f MB/s); players' longest waits %v %v %v; forward %+v",
		sent, size, elapsed, float64(sent*size)/elapsed.Seconds()/1e6, watchers[0].maxGap(), watchers[1].maxGap(), watchers[2].maxGap(), st)
}

// TestForwardKeptOverHandOver: an encoder that reconnects and takes its
// stream over (hub hand-over) keeps the forward's connection: the target
// sees one publish from start to end.
func TestForwardKeptOverHandOver(t *testing.T) {
	t.Parallel()
	target := startNode(t, nil)
	origin := newNode(t, forwardTo(target.addr))
	origin.srv.PublisherStaleAfter = 300 * time.Millisecond
	origin.addr = servertestStart(t, origin)
	first, err := publish(t, origin.addr, "live", "k", 20*time.Millisecond, 500, 10)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.send(20); err != nil {
		t.Fatal(err)
	}
	origin.waitLive(t)
	watcher, err := play(t, target.addr, "live", "k")
	if err != nil {
		t.Fatal(err)
	}
	// The first connection falls silent; the second takes over.
	second, err := publish(t, origin.addr, "live", "k", 20*time.Millisecond, 500, 10)
	if err != nil {
		t.Fatal(err)
	}
	second.sent.Store(1000)
	if err := second.send(30); err != nil {
		t.Fatal(err)
	}
	testpeer.WaitFor(t, "the new publisher's frames on the target", waitLimit, func() bool { return watcher.has(1020) })
	if n := target.count(server.PublishAccepted, ""); n != 1 {
		t.Errorf("the target saw %d publishes, want 1 (one connection across the hand-over)", n)
	}
	if n := target.count(server.StreamEnded, ""); n != 0 {
		t.Errorf("the target saw %d stream ends during the hand-over", n)
	}
	if st := origin.forward(t); st.Reconnects != 0 || st.State != forward.StateLive {
		t.Errorf("forward %+v: want live without reconnects", st)
	}
	second.c.Close()
	testpeer.WaitFor(t, "the target's stream ended by deleteStream", waitLimit, func() bool {
		return target.count(server.StreamEnded, "deleteStream") == 1
	})
}

// TestForwardConfigAppliesToNewPublishes: SetConfig (a reload) changes the
// targets of the publishes that start afterwards; a running forward goes on
// to its target.
func TestForwardConfigAppliesToNewPublishes(t *testing.T) {
	t.Parallel()
	first, second := startNode(t, nil), startNode(t, nil)
	origin := startNode(t, forwardTo(first.addr))
	a, err := publish(t, origin.addr, "a", "k", 20*time.Millisecond, 500, 10)
	if err != nil {
		t.Fatal(err)
	}
	origin.waitLive(t)
	origin.fwd.SetConfig(*forwardTo(second.addr))
	b, err := publish(t, origin.addr, "b", "k", 20*time.Millisecond, 500, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*publisher{a, b} {
		if err := p.send(5); err != nil {
			t.Fatal(err)
		}
	}
	testpeer.WaitFor(t, "a on the first target and b on the second", waitLimit, func() bool {
		return first.count(server.PublishAccepted, "") == 1 && second.count(server.PublishAccepted, "") == 1
	})
	for _, st := range origin.fwd.Forwards() {
		want := first.addr
		if st.Channel == "b" {
			want = second.addr
		}
		if !strings.Contains(st.Target, want) {
			t.Errorf("channel %s forwarded to %s, want %s", st.Channel, st.Target, want)
		}
	}
}
