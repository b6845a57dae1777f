package server

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/client"
	"github.com/rtmp-server/rtmp-server/internal/message"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// heldListener holds Accept's answer once the listener is closed until
// release is closed, standing for an accept loop slow to notice Shutdown.
type heldListener struct {
	net.Listener
	closed  chan struct{} // closed when Accept failed after Close
	release chan struct{}
	closes  atomic.Int32 // Close calls: Shutdown's, then Serve's as it returns
}

func (l *heldListener) Close() error {
	l.closes.Add(1)
	return l.Listener.Close()
}

func (l *heldListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		close(l.closed)
		<-l.release
	}
	return nc, err
}

// TestShutdownWaitsForServe: Shutdown returns only after every Serve has
// returned, as net/http's does.
func TestShutdownWaitsForServe(t *testing.T) {
	for _, name := range []string{"Shutdown", "Close"} {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			hl := &heldListener{Listener: ln, closed: make(chan struct{}), release: make(chan struct{})}
			srv := mustNew(t, DefaultOptions(), nil)
			served := make(chan error, 1)
			go func() { served <- srv.Serve(hl) }()
			waitFor(t, "Serve running", 5*time.Second, func() bool {
				srv.mu.Lock()
				defer srv.mu.Unlock()
				return len(srv.listeners) == 1
			})

			stopped := make(chan error, 1)
			go func() {
				if name == "Close" {
					stopped <- srv.Close()
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				stopped <- srv.Shutdown(ctx)
			}()
			<-hl.closed
			// Serve is held in Accept: Shutdown must not return meanwhile.
			hold := time.NewTimer(300 * time.Millisecond)
			select {
			case err := <-stopped:
				close(hl.release)
				t.Fatalf("%s returned (%v) while Serve was still running", name, err)
			case <-hold.C:
			}
			close(hl.release)
			if err := <-stopped; err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if n := hl.closes.Load(); n < 2 {
				t.Fatalf("%s returned before Serve did (it closes the listener as it returns)", name)
			}
			if err := <-served; !errors.Is(err, ErrServerClosed) {
				t.Fatalf("Serve returned %v", err)
			}
		})
	}
}

// brokenListener fails Accept with a permanent error once broken is closed.
type brokenListener struct {
	net.Listener
	broken chan struct{}
}

var errBrokenListener = errors.New("listener broken")

func (l *brokenListener) Accept() (net.Conn, error) {
	<-l.broken
	return nil, errBrokenListener
}

// TestHealthyChecksAcceptLoops: Healthy reports an accept loop that ended
// with an error.
func TestHealthyChecksAcceptLoops(t *testing.T) {
	good, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bad, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bl := &brokenListener{Listener: bad, broken: make(chan struct{})}
	srv := mustNew(t, DefaultOptions(), nil)
	goodErr, badErr := make(chan error, 1), make(chan error, 1)
	go func() { goodErr <- srv.Serve(good) }()
	go func() { badErr <- srv.Serve(bl) }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Healthy(ctx); err != nil {
		t.Fatalf("Healthy with both accept loops running: %v", err)
	}

	close(bl.broken)
	if err := <-badErr; !errors.Is(err, errBrokenListener) {
		t.Fatalf("Serve on the broken listener returned %v", err)
	}
	err = srv.Healthy(ctx)
	if err == nil {
		t.Fatal("Healthy reports nothing after an accept loop ended with an error")
	}
	t.Logf("Healthy: %v", err)

	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-goodErr; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
}

// ownGoroutines are the goroutines running a method of the server or the
// hub (the accept loops, read loops, writers, the pinger, fan-outs), by
// their header line ("goroutine N [...]:").
func ownGoroutines() map[string]string {
	out := make(map[string]string)
	for _, g := range testpeer.Goroutines(
		"github.com/rtmp-server/rtmp-server/internal/server.(*",
		"github.com/rtmp-server/rtmp-server/internal/hub.(*",
	) {
		id, _, _ := strings.Cut(g, " [")
		out[id] = g
	}
	return out
}

// TestShutdownLeavesNoGoroutine: once Shutdown has returned, no goroutine
// of the server or the hub is left (a goroutine that has signalled its end
// may take a moment to exit, hence the wait).
func TestShutdownLeavesNoGoroutine(t *testing.T) {
	before := ownGoroutines()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts := DefaultOptions()
	opts.MaxIPConnections = 0
	srv := mustNew(t, opts, nil)
	srv.PingInterval = 10 * time.Millisecond
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	ts := &testServer{Server: srv, addr: ln.Addr().String(), logs: &syncBuffer{}}

	pub := publish(t, ts, "live", "k")
	var players []*client.Conn
	for range 3 {
		p := ts.dial(t, "live")
		if st, err := p.Play("k"); err != nil {
			t.Fatal(st, err)
		}
		players = append(players, p)
	}
	pub.WriteMedia(message.TypeVideo, 0, videoHeader)
	for i := range 20 {
		if err := pub.WriteMedia(message.TypeVideo, uint32(i*40), keyframe(byte(i))); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range players {
		readMedia(t, p, 10)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
	var left []string
	deadline := time.Now().Add(time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		left = left[:0]
		for id, g := range ownGoroutines() {
			if _, ok := before[id]; !ok {
				left = append(left, g)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		<-tick.C
	}
	if len(left) > 0 {
		t.Fatalf("%d goroutines of the server or the hub outlived Shutdown:\n%s", len(left), strings.Join(left, "\n\n"))
	}
}
