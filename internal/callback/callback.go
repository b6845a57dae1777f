// Package callback asks a remote HTTP server whether a publisher may start,
// and tells it when a stream has ended.
//
// Each event is an HTTP POST with an empty body to the configured URL,
// carrying an HS256-signed JWT in the rtmp-event header. For the start event
// the server answers 200 with a stream-id header to accept the publisher;
// any other answer refuses it. Stop events are queued and retried in the
// background, so closing a session never waits on the callback server.
package callback

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rtmp-server/rtmp-server/internal/logging"
)

// Event names, as sent in the event claim.
const (
	EventStart = "start"
	EventStop  = "stop"
)

// EventHeader is the request header that carries the signed event token.
const EventHeader = "rtmp-event"

// StreamIDHeader is the response header in which the callback server returns
// the stream id for an accepted start event.
const StreamIDHeader = "stream-id"

// DefaultSubject is the sub claim used when Config.Subject is empty.
const DefaultSubject = "rtmp_event"

// DefaultTimeout is the per-request timeout used when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// TokenLifetime is how long a signed event token stays valid (its exp claim).
const TokenLifetime = 2 * time.Minute

// StopRetryWindow is how long a stop event keeps being retried, counted from
// the call to Stop, before it is logged as lost.
const StopRetryWindow = 2 * time.Minute

const (
	// maxPendingStops bounds the stop events queued or in flight at once.
	// Past it a stop is dropped and logged at error level.
	maxPendingStops = 4096

	// maxDrainBytes bounds how much of a response body is read before the
	// body is closed; a longer body costs the connection its reuse.
	maxDrainBytes = 64 << 10

	// maxResponseHeaderBytes bounds the response headers the server may send.
	maxResponseHeaderBytes = 64 << 10

	stopRetryInitial = 500 * time.Millisecond
	stopRetryMax     = 10 * time.Second

	dialTimeout         = 10 * time.Second
	tlsHandshakeTimeout = 10 * time.Second
	idleConnTimeout     = 90 * time.Second
	maxIdleConns        = 16
)

// Errors returned by Start. Each is wrapped with the detail of what happened
// (the status code, the network error); test with errors.Is.
var (
	ErrDenied      = errors.New("callback: publish denied")
	ErrNoStreamID  = errors.New("callback: 200 without stream-id header")
	ErrTimeout     = errors.New("callback: timed out")
	ErrUnreachable = errors.New("callback: server unreachable")
	ErrDisabled    = errors.New("callback: callbacks are turned off")
)

// Config says where events go and how they are signed.
type Config struct {
	URL     string        // CALLBACK_URL: absolute http or https URL
	Secret  string        // JWT_SECRET: HS256 signing key, never logged
	Subject string        // CUSTOM_JWT_SUBJECT: sub claim, DefaultSubject when empty
	Host    string        // RTMP_HOST: rtmp_host claim
	Port    int           // RTMP_PORT: rtmp_port claim
	Timeout time.Duration // CALLBACK_TIMEOUT_SECONDS: per request, DefaultTimeout when zero
}

// validate checks cfg and returns it with defaults filled in. Its errors
// never contain the secret, nor the URL's password.
func (cfg Config) validate() (Config, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return Config{}, errors.New("callback: URL does not parse")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return Config{}, fmt.Errorf("callback: URL %q: scheme must be http or https", u.Redacted())
	}
	if u.Host == "" {
		return Config{}, fmt.Errorf("callback: URL %q has no host", u.Redacted())
	}
	if cfg.Secret == "" {
		return Config{}, errors.New("callback: secret is empty")
	}
	if cfg.Timeout < 0 {
		return Config{}, fmt.Errorf("callback: timeout %v is negative", cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Subject == "" {
		cfg.Subject = DefaultSubject
	}
	return cfg, nil
}

// Event is one publishing session as the callback server sees it.
type Event struct {
	Channel  string
	Key      string // the stream key; sent in the token, never logged
	ClientIP string
	StreamID string // from Start; sent with stop only
	Session  uint64 // for logs only
}

// Client sends events to one callback server. It is safe for concurrent use.
// Close it to wait for queued stop events.
type Client struct {
	logger *slog.Logger       // immutable after New
	http   *http.Client       // immutable after New
	life   context.Context    // ends when Close gives up; cancels stop deliveries
	abort  context.CancelFunc // cancels life
	wg     sync.WaitGroup     // one count per pending stop

	// Backoff between stop attempts and how long to keep trying; the
	// package constants, shortened by tests. Immutable after New.
	retryInitial time.Duration
	retryMax     time.Duration
	retryWindow  time.Duration
	// maxPending bounds the stops queued or in flight: maxPendingStops,
	// lowered by tests. Immutable after New.
	maxPending int

	mu       sync.Mutex
	cfg      Config        // guarded by mu
	disabled bool          // guarded by mu: set by Disable, cleared by SetConfig
	changed  chan struct{} // guarded by mu: closed and replaced by SetConfig and Disable
	pending  int           // guarded by mu: stops queued or in flight
	closed   bool          // guarded by mu
	reporter Reporter      // guarded by mu: nil, or set by SetReporter
}

// New validates cfg and returns a client with its own connection pool.
// It does not contact the server.
func New(cfg Config, logger *slog.Logger) (*Client, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	transport := &http.Transport{
		DialContext:            (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           maxIdleConns,
		MaxIdleConnsPerHost:    maxIdleConns,
		IdleConnTimeout:        idleConnTimeout,
		TLSHandshakeTimeout:    tlsHandshakeTimeout,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}
	life, abort := context.WithCancel(context.Background())
	return &Client{
		logger: logger,
		http: &http.Client{
			Transport: transport,
			// A redirect is an answer, not a place to send the token to.
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		life:         life,
		abort:        abort,
		retryInitial: stopRetryInitial,
		retryMax:     stopRetryMax,
		retryWindow:  StopRetryWindow,
		maxPending:   maxPendingStops,
		cfg:          cfg,
		changed:      make(chan struct{}),
	}, nil
}

// SetConfig replaces the configuration for every request sent from now on,
// including retries of stop events queued before the call, which are tried
// again at once. It also turns sending back on after Disable. A bad cfg
// leaves the current configuration, and a Disable, in place.
func (c *Client) SetConfig(cfg Config) error {
	cfg, err := cfg.validate()
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.cfg = cfg
	c.disabled = false
	c.notifyLocked()
	c.mu.Unlock()
	return nil
}

// Disable turns sending off, as when a reload empties CALLBACK_URL: Start
// fails with ErrDisabled, and stop events, queued before or after, wait
// within their retry window for a SetConfig that turns sending back on,
// and are then sent with that configuration.
func (c *Client) Disable() {
	c.mu.Lock()
	c.disabled = true
	c.notifyLocked()
	c.mu.Unlock()
}

// notifyLocked wakes the stop deliveries waiting to retry. c.mu is held.
func (c *Client) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// config returns the configuration to send with, or ErrDisabled, and a
// channel that is closed when that changes.
func (c *Client) config() (Config, <-chan struct{}, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.disabled {
		return Config{}, c.changed, ErrDisabled
	}
	return c.cfg, c.changed, nil
}

// Start sends the start event for ev and returns the stream id the callback
// server assigned. The error says which case happened: ErrDenied (with the
// status), ErrNoStreamID, ErrTimeout, ErrUnreachable, ErrDisabled after
// Disable, or the context's error
// when ctx ends first. Start does not log its errors; the caller does.
func (c *Client) Start(ctx context.Context, ev Event) (string, error) {
	id, _, err := c.StartForwards(ctx, ev)
	return id, err
}

// StartForwards is Start, also returning the forward-url headers of the
// answer: targets to forward this publish to (see ForwardURLHeader).
func (c *Client) StartForwards(ctx context.Context, ev Event) (id string, forwards []string, err error) {
	started := time.Now()
	defer func() { c.reportRequest(EventStart, err, started) }()
	cfg, _, err := c.config()
	if err != nil {
		return "", nil, err
	}
	resp, err := c.send(ctx, cfg, EventStart, ev)
	if err != nil {
		return "", nil, err
	}
	if resp.status != http.StatusOK {
		return "", nil, fmt.Errorf("%w: status %d", ErrDenied, resp.status)
	}
	if resp.streamID == "" {
		return "", nil, ErrNoStreamID
	}
	c.logger.Debug("callback start accepted",
		"session", ev.Session, "client_ip", ev.ClientIP, "channel", ev.Channel,
		"stream_id", logging.Clip(resp.streamID), "event", EventStart)
	return resp.streamID, resp.forwardURLs, nil
}

// response is what send keeps of an HTTP response.
type response struct {
	status      int
	streamID    string
	forwardURLs []string // the forward-url headers, see StartForwards
}

// send posts one event signed with cfg. It returns a response for any HTTP
// answer, and otherwise an error wrapping ErrTimeout or ErrUnreachable, or
// ctx's error when ctx ended.
func (c *Client) send(ctx context.Context, cfg Config, event string, ev Event) (response, error) {
	token, err := sign(cfg, event, ev, time.Now())
	if err != nil {
		return response{}, fmt.Errorf("callback: signing %s event: %w", event, err)
	}
	reqCtx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, cfg.URL, http.NoBody)
	if err != nil {
		return response{}, fmt.Errorf("callback: building request: %w", err)
	}
	req.Header.Set(EventHeader, token)

	res, err := c.http.Do(req)
	if err != nil {
		return response{}, classify(ctx, err)
	}
	// Drain a bounded amount so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxDrainBytes))
	_ = res.Body.Close()
	return response{status: res.StatusCode, streamID: res.Header.Get(StreamIDHeader), forwardURLs: res.Header.Values(ForwardURLHeader)}, nil
}

// classify maps a transport error to the package's sentinel errors.
func classify(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("callback: canceled: %w", ctxErr)
	}
	detail := err
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		detail = urlErr.Err // drop the method and URL; callers know them
	}
	detail = clippedError{detail}
	var netErr net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()) {
		return fmt.Errorf("%w: %w", ErrTimeout, detail)
	}
	return fmt.Errorf("%w: %w", ErrUnreachable, detail)
}

// maxErrorText bounds the text of a transport error, which may quote what
// the callback server sent (net/http quotes a malformed status line).
const maxErrorText = 256

// clippedError is err with its text bounded (logging.ClipN); errors.Is and
// errors.As see err.
type clippedError struct{ err error }

func (e clippedError) Error() string { return logging.ClipN(e.err.Error(), maxErrorText) }
func (e clippedError) Unwrap() error { return e.err }

// sign builds the event token. rtmp_port is a JSON number, as the original
// server sent it (it kept the port as an integer).
func sign(cfg Config, event string, ev Event, now time.Time) (string, error) {
	claims := jwt.MapClaims{
		"sub":       cfg.Subject,
		"event":     event,
		"channel":   ev.Channel,
		"key":       ev.Key,
		"client_ip": ev.ClientIP,
		"rtmp_host": cfg.Host,
		"rtmp_port": cfg.Port,
		"exp":       jwt.NewNumericDate(now.Add(TokenLifetime)),
	}
	if event == EventStop {
		claims["stream_id"] = ev.StreamID
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(cfg.Secret))
}
