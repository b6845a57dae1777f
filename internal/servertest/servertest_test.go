package servertest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"

	"github.com/rtmp-server/rtmp-server/internal/server"
)

// shutdownRecorder is an http.Server that records whether it was shut down.
type shutdownRecorder struct {
	http.Server
	shutdown bool
}

func (s *shutdownRecorder) Shutdown(ctx context.Context) error {
	s.shutdown = true
	return s.Server.Shutdown(ctx)
}

// TestStartServesAndShutsDown serves an http.Server: it answers on the
// address Start returns, and is shut down when the test ends.
func TestStartServesAndShutsDown(t *testing.T) {
	srv := &shutdownRecorder{Server: http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	})}}
	t.Run("serve", func(t *testing.T) {
		addr := Start(t, srv, http.ErrServerClosed)
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTeapot {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	if !srv.shutdown {
		t.Fatal("not shut down when the test ended")
	}
}

// TestDialStream dials this project's server: connect and createStream
// succeed, and a publish on the stream is accepted.
func TestDialStream(t *testing.T) {
	opts := server.DefaultOptions()
	opts.MaxIPConnections = 0
	srv, err := server.New(opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := Start(t, srv, server.ErrServerClosed)
	c, err := DialStream(t, addr, "live")
	if err != nil {
		t.Fatal(err)
	}
	if c.StreamID() == 0 {
		t.Fatal("no stream id")
	}
	st, err := c.Publish("key")
	if err != nil || st.Code != "NetStream.Publish.Start" {
		t.Fatalf("publish: %v %v", st, err)
	}
	if _, err := DialStream(t, addr, "bad.app"); err == nil {
		t.Fatal("connect to an invalid channel succeeded")
	}
}

// TestDialStreamRefused reports a server that closes the connection.
func TestDialStreamRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if _, err := DialStream(t, ln.Addr().String(), "live"); err == nil {
		t.Fatal("no error from a server that hangs up")
	} else if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timed out instead of seeing the close: %v", err)
	}
}
