package server

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// heldListener holds Accept's answer once the listener is closed until
// release is closed, standing for an accept loop slow to notice Shutdown.
type heldListener struct {
	net.Listener
	closed  chan struct{} // closed when Accept failed after Close
	release chan struct{}
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
			select {
			case err := <-served:
				if !errors.Is(err, ErrServerClosed) {
					t.Fatalf("Serve returned %v", err)
				}
			default:
				t.Fatalf("%s returned before Serve did", name)
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
// with an error, and a server shut down.
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
	if err := srv.Healthy(ctx); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Healthy after Close: %v, want ErrServerClosed", err)
	}
}
