// Package server is the RTMP server: it accepts connections, runs the
// handshake and the chunk stream, and connects publishers and players
// through the hub. Its shape follows net/http.Server: Serve(listener),
// Shutdown(ctx), Close().
package server

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/access"
	"github.com/rtmp-server/rtmp-server/internal/hub"
	"github.com/rtmp-server/rtmp-server/internal/message"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("server: closed")

// MaxPending bounds the connections that have not yet completed connect
// (handshake, TLS, connect command). Past it the oldest is dropped, so a
// flood of slow or half-open connections cannot crowd out real clients,
// which get through the handshake in milliseconds.
const MaxPending = 1024

// Accept loop backoff on temporary errors (EMFILE, ECONNABORTED, ...).
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// Server is an RTMP server. Create it with New. The exported fields may be
// changed before Serve, not after; New sets them to the package defaults.
// The settings that may change while it runs are its Options (SetOptions).
type Server struct {
	// HandshakeTimeout bounds the time from accepting a connection until
	// its connect command succeeds (TLS and RTMP handshakes included); it
	// is not extended by anything the peer sends before.
	HandshakeTimeout time.Duration
	IdleTimeout      time.Duration
	PublisherTimeout time.Duration
	WriteTimeout     time.Duration
	PingInterval     time.Duration
	// PublisherStaleAfter lets a publish with the same key replace a
	// publisher silent this long; see the constant.
	PublisherStaleAfter time.Duration
	// FinishTimeout bounds the last flush of a connection; see the constant.
	FinishTimeout time.Duration
	// MaxPending bounds connections not yet past connect; see the constant.
	MaxPending int
	// Observer, if set, is told of each connection's state changes, of its
	// publish and play requests and their outcome, and of players that
	// skip or are dropped (see Event). It is called on the connection's
	// goroutines (ConnRefused: on the accept loop) with no lock held, one
	// event at a time per connection; it must be quick and safe for
	// concurrent use.
	Observer func(Event)
	// Forwarder, if set, is told of each publication that starts and
	// ends, to push it to other servers. Set before Serve.
	Forwarder Forwarder
	// Admission, if set, is asked before each approved publish goes live
	// (a fleet of servers; see Admission).
	Admission Admission

	hub     *hub.Hub
	log     *slog.Logger
	limiter *access.Limiter

	opts     atomic.Pointer[Options]
	limitLog rateLimited
	auth     atomic.Pointer[authHolder]
	waiting  pendingPublishes // publishes not yet live, for kill-session and close-stream
	handover handoverState    // HandOver's (handover.go)
	ingest   ingestClock      // the clock publishers read on (ingest.go)

	nextID atomic.Uint64
	drain  atomic.Uint32 // a DrainMode

	pingStart sync.Once
	pingStop  sync.Once
	pingDone  chan struct{} // closed to stop the pinger
	pingWG    sync.WaitGroup

	done chan struct{} // closed by Shutdown and Close

	mu        sync.Mutex
	listeners map[*net.Listener]struct{} // guarded by mu: those Serve accepts on
	failed    []string                   // guarded by mu: listeners whose accept loop ended with an error
	conns     map[*conn]struct{}         // guarded by mu
	pending   *list.List                 // guarded by mu: *conn not yet connected, oldest first
	closed    bool                       // guarded by mu
	serveWG   sync.WaitGroup             // running Serve calls; added to under mu while !closed
	connWG    sync.WaitGroup
}

type authHolder struct{ a Authorizer }

// New returns a server with the given options, or an error naming the
// first invalid one. logger receives every log line; nil discards them.
func New(opts Options, logger *slog.Logger) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		HandshakeTimeout:    HandshakeTimeout,
		IdleTimeout:         IdleTimeout,
		PublisherTimeout:    PublisherTimeout,
		PublisherStaleAfter: PublisherStaleAfter,
		WriteTimeout:        WriteTimeout,
		FinishTimeout:       FinishTimeout,
		PingInterval:        PingInterval,
		MaxPending:          MaxPending,
		hub:                 hub.New(),
		log:                 logger,
		limiter:             access.NewLimiter(opts.MaxIPConnections, opts.ConcurrentLimitWhitelist),
		listeners:           make(map[*net.Listener]struct{}),
		conns:               make(map[*conn]struct{}),
		pending:             list.New(),
		pingDone:            make(chan struct{}),
		done:                make(chan struct{}),
	}
	s.opts.Store(&opts)
	s.limiter.SetIPv6Prefix(opts.IPv6LimitPrefix)
	s.hub.SetGOPBudget(opts.GOPCacheTotalBytes)
	return s, nil
}

// SetOptions replaces the options while the server runs (a reload): they
// apply to new sessions and to the checks made from then on (allow-lists,
// limits, request logging, and the chunk size and GOP cache of streams
// published from then on). Listeners are not touched. Invalid options
// change nothing and are reported.
func (s *Server) SetOptions(opts Options) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	s.opts.Store(&opts)
	s.limiter.SetLimits(opts.MaxIPConnections, opts.ConcurrentLimitWhitelist)
	s.limiter.SetIPv6Prefix(opts.IPv6LimitPrefix)
	s.hub.SetGOPBudget(opts.GOPCacheTotalBytes)
	return nil
}

// Options returns the options in force.
func (s *Server) Options() Options { return *s.opts.Load() }

func (s *Server) options() *Options { return s.opts.Load() }

// SetAuthorizer sets the publish authorizer; nil accepts every publish.
func (s *Server) SetAuthorizer(a Authorizer) { s.auth.Store(&authHolder{a}) }

func (s *Server) authorizer() Authorizer {
	if h := s.auth.Load(); h != nil {
		return h.a
	}
	return nil
}

// Hub exposes the stream registry (status, control).
func (s *Server) Hub() *hub.Hub { return s.hub }

// Serve accepts connections on ln until Shutdown or Close, and returns
// ErrServerClosed then. Other accept errors that are not temporary are
// returned, and Healthy reports the loss from then on. ln is closed when
// Serve returns; Shutdown and Close return only after every Serve has.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return ErrServerClosed
	}
	s.listeners[&ln] = struct{}{}
	s.serveWG.Add(1)
	// Under mu, so that the pinger is started before Close or Shutdown,
	// which mark the server closed under mu first, wait for it.
	s.pingStart.Do(func() {
		s.pingWG.Add(1)
		go s.pingLoop()
	})
	s.mu.Unlock()
	defer s.serveWG.Done()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, &ln)
		s.mu.Unlock()
		_ = ln.Close()
	}()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, acceptBackoffMin), acceptBackoffMax)
				s.log.Warn("accept failed; retrying", "err", err, "backoff", backoff)
				t := time.NewTimer(backoff)
				select {
				case <-t.C:
				case <-s.done:
					t.Stop()
					return ErrServerClosed
				}
				continue
			}
			s.mu.Lock()
			s.failed = append(s.failed, ln.Addr().String())
			s.mu.Unlock()
			return err
		}
		backoff = 0
		if !s.track(nc) {
			_ = nc.Close()
			return ErrServerClosed
		}
	}
}

// isTemporary reports errors after which accepting can go on.
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// track registers a new connection and starts serving it.
func (s *Server) track(nc net.Conn) bool {
	opts := s.options()
	id := s.nextID.Add(1)
	ip := remoteIP(nc)
	release, ok := s.limiter.Acquire(ip)
	if !ok {
		release = func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{
		srv:      s,
		nc:       nc,
		id:       id,
		clientIP: ip,
		ip:       ip.String(),
		opts:     opts,
		overIP:   !ok,
		release:  release,
		ctx:      ctx,
		cancel:   cancel,
	}
	c.initOutput()
	c.log = s.log.With("session", id, "client_ip", c.ip)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		release()
		cancel()
		return false
	}
	if len(s.conns) >= opts.MaxConnections {
		s.mu.Unlock()
		release()
		cancel()
		_ = nc.Close()
		s.limitLog.warn(s.log, "connection refused: MAX_CONNECTIONS reached", "limit", opts.MaxConnections)
		c.observe(Event{Kind: ConnRefused, Reason: "MAX_CONNECTIONS reached"})
		return true
	}
	var evict *conn
	if s.pending.Len() >= s.MaxPending {
		evict = s.pending.Remove(s.pending.Front()).(*conn)
		evict.pendingElem = nil
	}
	c.pendingElem = s.pending.PushBack(c)
	s.conns[c] = struct{}{}
	s.connWG.Add(1)
	s.mu.Unlock()
	if evict != nil {
		evict.Kick(errEvicted)
		s.limitLog.warn(s.log, "dropped the oldest connection still in handshake", "bound", "MaxPending", "limit", s.MaxPending)
	}
	go c.serve()
	return true
}

// connected marks c as past the connect command: no longer evictable.
func (s *Server) connected(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.pendingElem != nil {
		s.pending.Remove(c.pendingElem)
		c.pendingElem = nil
	}
}

func (s *Server) forget(c *conn) {
	c.cancel()
	s.mu.Lock()
	if c.pendingElem != nil {
		s.pending.Remove(c.pendingElem)
		c.pendingElem = nil
	}
	delete(s.conns, c)
	s.mu.Unlock()
	s.connWG.Done()
}

func remoteIP(nc net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// KillSession ends the publisher of channel (kill-session), and refuses
// the publishes of channel still waiting to go live (for a stale
// publisher or the start callback) when their wait ends; an approved one
// gets its stop event. It reports whether this server held a live
// publication of channel and how many waiting publishes it reached.
func (s *Server) KillSession(channel string) (live bool, pending int) {
	pending = s.waiting.kill(channel, func() { live = s.hub.Kick(channel, errKilled, nil) })
	return live, pending
}

// CloseStream ends the publisher of channel if its stream id is streamID
// (close-stream). A publish of channel waiting for its start callback is
// refused if the callback approves it with streamID. It reports whether a
// live publication was ended and how many waiting publishes it reached.
func (s *Server) CloseStream(channel, streamID string) (live bool, pending int) {
	pending = s.waiting.close(channel, streamID, func() {
		live = s.hub.Kick(channel, errKilled, func(p *hub.Publication) bool { return p.StreamID == streamID })
	})
	return live, pending
}

// Healthy reports whether the server takes connections and streams: no
// accept loop (Serve) has ended with an error, and the stream registry's
// locks can be taken within ctx's deadline (1 s without one). The watchdog
// only pings while it returns nil. Accept loops ended by Shutdown or Close
// are not a failure: the process is stopping, within its own deadline.
func (s *Server) Healthy(ctx context.Context) error {
	s.mu.Lock()
	failed := slices.Clone(s.failed)
	s.mu.Unlock()
	if len(failed) > 0 {
		return fmt.Errorf("server: the accept loop on %s has stopped", strings.Join(failed, ", "))
	}
	deadline := time.Second
	if d, ok := ctx.Deadline(); ok {
		deadline = time.Until(d)
	}
	if !s.hub.Ping(deadline) {
		return errors.New("server: stream registry did not answer in time")
	}
	return nil
}

// Shutdown stops accepting, ends publishers (their players are told the
// stream ended and their stop events are queued), lets queued messages
// flush, and waits for every connection to end or ctx to expire; then it
// closes what is left and returns ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closeLocked()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.hub.Close()
	s.stopPinger()

	// Publishers first, so players get end-of-stream before they go:
	// the others are kicked once the publishers have left the hub.
	var pubs []*conn
	for _, c := range conns {
		if s.hub.IsPublisher(c) {
			c.Kick(errShutdown)
			pubs = append(pubs, c)
		}
	}
	s.waitUnpublished(ctx, pubs)
	for _, c := range conns {
		c.Kick(errShutdown)
	}
	done := make(chan struct{})
	go func() {
		s.wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.closeConns()
		<-done
		return ctx.Err()
	}
}

// waitUnpublished waits until none of pubs publishes, or ctx ends. A
// kicked publisher stops reading at once and unpublishes first thing.
func (s *Server) waitUnpublished(ctx context.Context, pubs []*conn) {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for _, c := range pubs {
		for s.hub.IsPublisher(c) {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}
}

// pingLoop sends every connection a ping request each PingInterval, from
// one goroutine for the whole server rather than a timer per connection.
// Answers keep quiet players inside IdleTimeout.
func (s *Server) pingLoop() {
	defer s.pingWG.Done()
	t := time.NewTicker(s.PingInterval)
	defer t.Stop()
	var conns []*conn
	for {
		select {
		case <-s.pingDone:
			return
		case <-t.C:
		}
		s.mu.Lock()
		conns = conns[:0]
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		ping := message.UserControl{Event: message.EventPingRequest, Value: uint32(time.Now().UnixMilli())}.Chunk()
		for _, c := range conns {
			if c.live.Load() {
				c.sendEncoded(ping)
			}
		}
		clear(conns)
	}
}

func (s *Server) stopPinger() {
	s.pingStop.Do(func() { close(s.pingDone) })
	s.pingWG.Wait()
}

// Close closes the listeners and every connection at once, and returns
// when every Serve and connection has ended.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closeLocked()
	s.mu.Unlock()
	s.hub.Close()
	s.stopPinger()
	s.closeConns()
	s.wait()
	return nil
}

// closeLocked marks the server closed and closes its listeners. s.mu held.
func (s *Server) closeLocked() {
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	for ln := range s.listeners {
		_ = (*ln).Close()
	}
}

// wait waits for every goroutine of the server: the accept loops, the
// connections (whose read loops wait for their writers) and, once no
// publisher is left, the streams' fan-outs.
func (s *Server) wait() {
	s.serveWG.Wait()
	s.connWG.Wait()
	s.ingest.waitStopped()
	s.hub.Wait()
}

func (s *Server) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Kick(errShutdown)
		_ = c.nc.Close()
	}
}
