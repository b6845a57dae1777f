package testpeer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// callbackPath is the path the callback server answers on; any other
	// path is an invalid request.
	callbackPath = "/rtmp/events"
	// callbackEventHeader carries the signed event token.
	callbackEventHeader = "rtmp-event"
	// callbackStreamIDHeader carries the stream id of an approved start.
	callbackStreamIDHeader = "stream-id"
	// callbackForwardURLHeader names a target to forward the publish to.
	callbackForwardURLHeader = "forward-url"
	// callbackExpSlack is how far past Want.TokenLifetime an exp claim may
	// lie, for clock steps between signing and checking.
	callbackExpSlack = 5 * time.Second
	// callbackStopLimit bounds how long Stop waits for requests in flight.
	callbackStopLimit = 5 * time.Second
)

// CallbackWant is what every token the callback server receives must hold,
// besides the claims that describe the stream.
type CallbackWant struct {
	Secret   string // HS256 key the token must be signed with
	Subject  string // sub claim
	RTMPHost string // rtmp_host claim
	// OtherRTMPHosts are more rtmp_host claims accepted (several servers
	// posting to one callback server).
	OtherRTMPHosts []string
	// ClientIP is the client_ip claim; "" accepts any IP address.
	ClientIP string
	// TokenLifetime is the longest time from now to the exp claim.
	TokenLifetime time.Duration
}

// CallbackRequest is one event that arrived with a valid token, and what
// the callback server did with it.
type CallbackRequest struct {
	Event    string // "start" or "stop"
	Channel  string
	Key      string
	ClientIP string
	RTMPHost string
	RTMPPort int
	StreamID string // stop only
	Expires  time.Time
	Received time.Time

	Reply CallbackReply // what the responder chose
	// Answered is set once the reply was written; Abandoned when the
	// client went away while the reply was held.
	Answered  bool
	Abandoned bool
}

// CallbackReply is how the callback server answers one event.
type CallbackReply struct {
	Status   int    // HTTP status; 200 when zero
	StreamID string // sent in the stream-id header when not empty
	// ForwardURLs are sent as forward-url headers, one each.
	ForwardURLs []string
	// Hold, when not nil, delays the answer until it is closed. The
	// request is abandoned instead if the client gives up first or the
	// test ends.
	Hold <-chan struct{}
}

// CallbackResponder decides the reply to each valid event. It is called
// from the server's handler goroutines, concurrently, and must not block.
type CallbackResponder func(CallbackRequest) CallbackReply

// Callback is an HTTP server on a loopback port that plays the callback
// server of the start and stop events: it checks each token's signature
// and claims, records the events and answers as its responder says. A
// request whose token does not verify is answered 401 and fails the test
// when it ends. Stop and Restart must be called from the goroutine of the
// test that started it; the other methods from any goroutine.
type Callback struct {
	t       testing.TB
	want    CallbackWant
	respond CallbackResponder
	addr    string        // host:port, kept across Stop and Restart
	closing chan struct{} // closed when the test ends: releases held replies

	srv  *http.Server // nil while stopped
	done chan error   // Serve's result for srv

	mu       sync.Mutex
	port     int               // guarded by mu: expected rtmp_port; 0 accepts any
	requests []CallbackRequest // guarded by mu
	invalid  []string          // guarded by mu: why requests were refused
	changed  chan struct{}     // guarded by mu: closed and replaced on every change
}

// StartCallback starts a callback server that checks tokens against want
// and answers with respond. It is closed when the test ends.
func StartCallback(t testing.TB, want CallbackWant, respond CallbackResponder) *Callback {
	t.Helper()
	if want.Secret == "" || respond == nil {
		t.Fatal("testpeer: StartCallback needs a secret and a responder")
	}
	c := &Callback{t: t, want: want, respond: respond, closing: make(chan struct{}), changed: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("callback: listen: %v", err)
	}
	c.addr = ln.Addr().String()
	c.serve(ln)
	t.Cleanup(c.close)
	return c
}

// URL is the address to configure as CALLBACK_URL.
func (c *Callback) URL() string { return "http://" + c.addr + callbackPath }

// ExpectRTMPPort makes every later token carry port in rtmp_port.
func (c *Callback) ExpectRTMPPort(port int) {
	c.mu.Lock()
	c.port = port
	c.mu.Unlock()
}

// Requests returns a copy of the valid events received so far, in order.
func (c *Callback) Requests() []CallbackRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.requests)
}

// Wait waits until cond holds for the events received so far, or ctx ends.
// It returns the events cond last saw, and ctx's error when it ended first.
func (c *Callback) Wait(ctx context.Context, cond func([]CallbackRequest) bool) ([]CallbackRequest, error) {
	for {
		c.mu.Lock()
		reqs, changed := slices.Clone(c.requests), c.changed
		c.mu.Unlock()
		if cond(reqs) {
			return reqs, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return reqs, ctx.Err()
		}
	}
}

// WaitFor is Wait with a timeout that fails t, listing the events.
func (c *Callback) WaitFor(t testing.TB, what string, timeout time.Duration, cond func([]CallbackRequest) bool) []CallbackRequest {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	reqs, err := c.Wait(ctx, cond)
	if err != nil {
		t.Fatalf("callback: timed out after %v waiting for %s; events so far:\n%s", timeout, what, FormatCallbackRequests(reqs))
	}
	return reqs
}

// FormatCallbackRequests lists events one a line, for failure messages.
func FormatCallbackRequests(reqs []CallbackRequest) string {
	if len(reqs) == 0 {
		return "  (none)"
	}
	var b strings.Builder
	for i, r := range reqs {
		fmt.Fprintf(&b, "  %d: %s channel=%q key=%q stream_id=%q -> status %d stream-id %q answered=%v abandoned=%v\n",
			i, r.Event, r.Channel, r.Key, r.StreamID, r.Reply.status(), r.Reply.StreamID, r.Answered, r.Abandoned)
	}
	return b.String()
}

func (r CallbackReply) status() int {
	if r.Status == 0 {
		return http.StatusOK
	}
	return r.Status
}

// Stop closes the listener, waiting briefly for requests in flight, so
// that later requests are refused as if the server were down. Held replies
// are not released. Stopping a stopped server does nothing.
func (c *Callback) Stop() {
	c.t.Helper()
	if c.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), callbackStopLimit)
	defer cancel()
	if err := c.srv.Shutdown(ctx); err != nil {
		_ = c.srv.Close()
	}
	if err := <-c.done; !errors.Is(err, http.ErrServerClosed) {
		c.t.Errorf("callback: serve: %v", err)
	}
	c.srv = nil
}

// Restart stops the server if it runs and listens again on the same port.
func (c *Callback) Restart() {
	c.t.Helper()
	c.Stop()
	// The port was ours a moment ago; retry briefly in case the old
	// listener's socket is not gone yet.
	deadline := time.Now().Add(callbackStopLimit)
	retry := time.NewTicker(20 * time.Millisecond)
	defer retry.Stop()
	for {
		ln, err := net.Listen("tcp", c.addr)
		if err == nil {
			c.serve(ln)
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("callback: listen again on %s: %v", c.addr, err)
		}
		<-retry.C
	}
}

func (c *Callback) serve(ln net.Listener) {
	c.srv = &http.Server{Handler: http.HandlerFunc(c.handle), ReadHeaderTimeout: 10 * time.Second}
	c.done = make(chan error, 1)
	srv, done := c.srv, c.done
	go func() { done <- srv.Serve(ln) }()
}

// close releases held replies, closes the server and reports tokens that
// did not verify.
func (c *Callback) close() {
	close(c.closing)
	if c.srv != nil {
		_ = c.srv.Close()
		<-c.done
		c.srv = nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, why := range c.invalid {
		c.t.Errorf("callback: invalid request: %s", why)
	}
}

func (c *Callback) handle(w http.ResponseWriter, r *http.Request) {
	req, err := c.verify(r)
	if err != nil {
		c.mu.Lock()
		c.invalid = append(c.invalid, err.Error())
		c.notifyLocked()
		c.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	reply := c.respond(req)
	req.Reply = reply

	c.mu.Lock()
	i := len(c.requests)
	c.requests = append(c.requests, req)
	c.notifyLocked()
	c.mu.Unlock()

	if reply.Hold != nil {
		select {
		case <-reply.Hold:
		case <-r.Context().Done():
			c.finish(i, false)
			return
		case <-c.closing:
			c.finish(i, false)
			return
		}
	}
	if reply.StreamID != "" {
		w.Header().Set(callbackStreamIDHeader, reply.StreamID)
	}
	for _, u := range reply.ForwardURLs {
		w.Header().Add(callbackForwardURLHeader, u)
	}
	w.WriteHeader(reply.status())
	c.finish(i, true)
}

// finish records how request i ended.
func (c *Callback) finish(i int, answered bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests[i].Answered = answered
	c.requests[i].Abandoned = !answered
	c.notifyLocked()
}

func (c *Callback) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// verify checks the request and its token, and returns the event it carries.
func (c *Callback) verify(r *http.Request) (CallbackRequest, error) {
	now := time.Now()
	if r.Method != http.MethodPost || r.URL.Path != callbackPath {
		return CallbackRequest{}, fmt.Errorf("%s %s, want POST %s", r.Method, r.URL.Path, callbackPath)
	}
	if r.ContentLength > 0 {
		return CallbackRequest{}, fmt.Errorf("body of %d bytes, want none", r.ContentLength)
	}
	raw := r.Header.Get(callbackEventHeader)
	if raw == "" {
		return CallbackRequest{}, fmt.Errorf("no %s header", callbackEventHeader)
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return []byte(c.want.Secret), nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithSubject(c.want.Subject),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil {
		return CallbackRequest{}, fmt.Errorf("token: %w", err)
	}

	req := CallbackRequest{Received: now}
	var errs []error
	str := func(name string) string {
		v, ok := claims[name].(string)
		if !ok {
			errs = append(errs, fmt.Errorf("claim %s is %T %v, want a string", name, claims[name], claims[name]))
		}
		return v
	}
	req.Event = str("event")
	req.Channel = str("channel")
	req.Key = str("key")
	req.ClientIP = str("client_ip")
	req.RTMPHost = str("rtmp_host")

	allowed := []string{"sub", "event", "channel", "key", "client_ip", "rtmp_host", "rtmp_port", "exp"}
	switch req.Event {
	case "start":
		if _, has := claims["stream_id"]; has {
			errs = append(errs, errors.New("start event carries a stream_id claim"))
		}
	case "stop":
		allowed = append(allowed, "stream_id")
		if req.StreamID = str("stream_id"); req.StreamID == "" && errs == nil {
			errs = append(errs, errors.New("stop event with an empty stream_id"))
		}
	default:
		errs = append(errs, fmt.Errorf("event %q, want start or stop", req.Event))
	}
	for name := range claims {
		if !slices.Contains(allowed, name) {
			errs = append(errs, fmt.Errorf("unexpected claim %s in a %s event", name, req.Event))
		}
	}

	if req.Channel == "" {
		errs = append(errs, errors.New("empty channel claim"))
	}
	if req.Key == "" {
		errs = append(errs, errors.New("empty key claim"))
	}
	if ip, err := netip.ParseAddr(req.ClientIP); err != nil {
		errs = append(errs, fmt.Errorf("client_ip %q is not an IP address", req.ClientIP))
	} else if c.want.ClientIP != "" && ip.String() != c.want.ClientIP {
		errs = append(errs, fmt.Errorf("client_ip %q, want %q", req.ClientIP, c.want.ClientIP))
	}
	if req.RTMPHost != c.want.RTMPHost && !slices.Contains(c.want.OtherRTMPHosts, req.RTMPHost) {
		errs = append(errs, fmt.Errorf("rtmp_host %q, want %q", req.RTMPHost, c.want.RTMPHost))
	}

	c.mu.Lock()
	wantPort := c.port
	c.mu.Unlock()
	port, ok := claims["rtmp_port"].(float64)
	switch {
	case !ok || port != math.Trunc(port) || port < 1 || port > 65535:
		errs = append(errs, fmt.Errorf("rtmp_port is %T %v, want a port number", claims["rtmp_port"], claims["rtmp_port"]))
	case wantPort != 0 && int(port) != wantPort:
		errs = append(errs, fmt.Errorf("rtmp_port %v, want %d", port, wantPort))
	}
	req.RTMPPort = int(port)

	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		errs = append(errs, fmt.Errorf("exp: %v", err))
	} else {
		req.Expires = exp.Time
		if c.want.TokenLifetime > 0 && exp.Time.After(now.Add(c.want.TokenLifetime+callbackExpSlack)) {
			errs = append(errs, fmt.Errorf("exp %v is more than %v away", exp.Time, c.want.TokenLifetime))
		}
	}

	if err := errors.Join(errs...); err != nil {
		return CallbackRequest{}, fmt.Errorf("%s event for channel %q: %w", req.Event, req.Channel, err)
	}
	return req, nil
}
