// Package servertest runs a server for a test the way net/http/httptest
// does: on a loopback listener it binds and keeps, shut down when the test
// ends; and dials it as an RTMP client. The peers themselves (programs,
// certificates, listeners) are in testpeer.
package servertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/client"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

const (
	// shutdownLimit bounds the graceful shutdown when the test ends.
	shutdownLimit = 10 * time.Second
	// dialLimit bounds the TCP connect and the RTMP handshake of DialStream.
	dialLimit = 5 * time.Second
	// streamLimit is the deadline DialStream sets on the connection.
	streamLimit = 15 * time.Second
)

// Server is what Start runs: a server shaped like http.Server.
type Server interface {
	Serve(ln net.Listener) error
	Shutdown(ctx context.Context) error
}

// Start serves srv on a new loopback listener (testpeer.Listen) and
// returns the listener's address. See Serve.
func Start(t testing.TB, srv Server, closed error) string {
	t.Helper()
	ln := testpeer.Listen(t)
	Serve(t, srv, ln, closed)
	return ln.Addr().String()
}

// Serve runs srv.Serve(ln) until the test ends, then shuts srv down
// gracefully and checks that Serve returned closed (the server's
// ErrServerClosed). Cleanups registered after Serve run before the
// shutdown.
func Serve(t testing.TB, srv Server, ln net.Listener, closed error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownLimit)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("servertest: shutdown: %v", err)
		}
		if err := <-errc; !errors.Is(err, closed) {
			t.Errorf("servertest: Serve returned %v, want %v", err, closed)
		}
	})
}

// DialStream connects to the RTMP server at addr, connects to app and
// creates a stream: what comes before publish or play. The connection has
// a deadline of a few seconds and is closed when the test ends. Errors are
// returned, not reported, so that DialStream can run in any goroutine.
func DialStream(t testing.TB, addr, app string) (*client.Conn, error) {
	c, err := client.Dial(addr, nil, dialLimit)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.SetDeadline(time.Now().Add(streamLimit)); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.Connect(app); err != nil {
		c.Close()
		return nil, fmt.Errorf("connect %q: %w", app, err)
	}
	if _, err := c.CreateStream(); err != nil {
		c.Close()
		return nil, fmt.Errorf("createStream: %w", err)
	}
	return c, nil
}
