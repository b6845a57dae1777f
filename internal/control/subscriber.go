package control

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/rtmp-server/rtmp-server/internal/logging"
)

// Target is what commands act on; the server implements it. Its methods are
// called from the subscriber's goroutine, one at a time, and should return
// promptly: messages wait while they run.
type Target interface {
	// KillSession closes the publisher of channel and refuses the
	// publishes of channel still waiting to go live. It reports whether
	// this server held a live publication of channel, and how many
	// waiting publishes the command reached.
	KillSession(channel string) (live bool, pending int)
	// CloseStream closes the publisher of channel if its stream id is
	// streamID, and refuses a waiting publish of channel that is approved
	// with streamID. It reports whether a live publication was closed and
	// how many waiting publishes the command reached.
	CloseStream(channel, streamID string) (live bool, pending int)
}

const (
	// Delay before reconnecting to Redis, doubling per failed attempt.
	minBackoff = 200 * time.Millisecond
	maxBackoff = 5 * time.Second

	// healthInterval is how long a quiet subscription waits before sending
	// PING; a second quiet interval with no answer counts as a lost
	// connection. Redis restarts are noticed at once from the closed socket;
	// this catches silent network failures.
	healthInterval = 15 * time.Second

	// Network timeouts of the Redis connection.
	dialTimeout  = 5 * time.Second
	ioTimeout    = 5 * time.Second
	replyTimeout = 5 * time.Second // for the SUBSCRIBE confirmation
)

// Subscriber listens on a Redis pub/sub channel for commands and applies
// them to Target. Set the fields, then call Run once.
type Subscriber struct {
	Addr     string // Redis host:port
	Password string // AUTH password, or "" for none; never logged
	Channel  string // pub/sub channel to listen on

	// TLS connects with TLS, verifying the server against the system roots
	// and the host part of Addr. TLSConfig, when set, is used instead (and
	// implies TLS).
	TLS       bool
	TLSConfig *tls.Config

	Target Target
	Logger *slog.Logger // nil discards

	// Host names this server (RTMP_HOST) for drain and undrain; OnDrain
	// applies them (true: drain). Without both, they are not for it.
	Host    string
	OnDrain func(drain bool)

	connected atomic.Bool // true while the subscription is live

	// Timing, the package constants unless a test shortens them. Read by
	// Run only; set before calling it.
	minBackoff     time.Duration
	maxBackoff     time.Duration
	healthInterval time.Duration

	// failedAttempts counts connection attempts that failed, for tests.
	failedAttempts atomic.Int64
}

// Connected reports whether the subscription is live: subscribed, and the
// connection not yet seen to fail.
func (s *Subscriber) Connected() bool { return s.connected.Load() }

// Run connects, subscribes and applies commands until ctx ends, then returns
// nil. While Redis is unreachable, or after the connection is lost, it keeps
// reconnecting with backoff, logging each change of state once rather than
// every attempt. Messages that do not parse are logged and skipped.
// Commands published while the subscription is down are lost: Redis pub/sub
// does not keep them. Run returns an error at once only if the Subscriber's
// fields are unusable.
func (s *Subscriber) Run(ctx context.Context) error {
	opts, err := s.options()
	if err != nil {
		return err
	}
	logger := s.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("redis_addr", s.Addr, "redis_channel", s.Channel)

	client := redis.NewClient(opts)
	defer client.Close()

	minWait, maxWait := orDefault(s.minBackoff, minBackoff), orDefault(s.maxBackoff, maxBackoff)
	backoff := minWait
	down := false // whether the current outage has been logged
	for {
		subscribed, err := s.subscribe(ctx, client, logger)
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case subscribed:
			logger.Warn("redis connection lost, reconnecting", "error", err)
			down = true
			backoff = minWait
		case !down:
			logger.Warn("redis unavailable, retrying", "error", err)
			down = true
			s.failedAttempts.Add(1)
		default:
			s.failedAttempts.Add(1)
		}

		timer := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
		backoff = min(2*backoff, maxWait)
	}
}

// options builds the Redis client options, checking the fields.
func (s *Subscriber) options() (*redis.Options, error) {
	if s.Target == nil {
		return nil, errors.New("control: Subscriber.Target is nil")
	}
	if s.Channel == "" {
		return nil, errors.New("control: Subscriber.Channel is empty")
	}
	host, _, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return nil, fmt.Errorf("control: Subscriber.Addr %q: %w", s.Addr, err)
	}
	opts := &redis.Options{
		Addr:            s.Addr,
		Password:        s.Password,
		Protocol:        2,
		DisableIdentity: true,
		DialTimeout:     dialTimeout,
		DialerRetries:   1,
		ReadTimeout:     ioTimeout,
		WriteTimeout:    ioTimeout,
		PoolSize:        1,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	}
	switch {
	case s.TLSConfig != nil:
		opts.TLSConfig = s.TLSConfig
	case s.TLS:
		opts.TLSConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	return opts, nil
}

// subscribe runs one connection: it subscribes, then applies messages until
// the connection fails or ctx ends. It reports whether the subscription was
// confirmed, and why it ended.
func (s *Subscriber) subscribe(ctx context.Context, client *redis.Client, logger *slog.Logger) (bool, error) {
	// The PubSub lives only as long as this connection. go-redis re-dials
	// inside the call that saw a connection fail; closing the PubSub on
	// return discards that connection, so every reconnection goes through
	// Run, where it is backed off and its state change logged.
	ps := client.Subscribe(ctx)
	defer ps.Close()
	// Receive does not watch ctx; closing the PubSub unblocks it.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()

	if err := ps.Subscribe(ctx, s.Channel); err != nil {
		return false, err
	}
	reply, err := ps.ReceiveTimeout(ctx, replyTimeout)
	if err != nil {
		return false, err
	}
	if sub, ok := reply.(*redis.Subscription); !ok || sub.Kind != "subscribe" || sub.Channel != s.Channel {
		return false, fmt.Errorf("unexpected reply to SUBSCRIBE: %s", logging.Quote(fmt.Sprint(reply)))
	}

	s.connected.Store(true)
	defer s.connected.Store(false)
	logger.Info("redis connected and subscribed")

	health := orDefault(s.healthInterval, healthInterval)
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, health)
		if err != nil {
			if !isTimeout(err) || ctx.Err() != nil {
				return true, err
			}
			if pinged {
				return true, fmt.Errorf("no reply to PING within %v", health)
			}
			if err := ps.Ping(ctx); err != nil {
				return true, err
			}
			pinged = true
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Message:
			s.apply(logger, m.Payload)
		case *redis.Subscription:
			if m.Kind == "unsubscribe" {
				return true, errors.New("unsubscribed by the server")
			}
		}
	}
}

// apply parses one message and runs it against the target, logging the
// outcome.
func (s *Subscriber) apply(logger *slog.Logger, payload string) {
	cmd, err := ParseCommand(payload)
	if err != nil {
		logger.Warn("control message ignored", "error", err)
		return
	}
	if cmd.Name == Drain || cmd.Name == Undrain {
		result := "not for this server"
		if s.OnDrain != nil && cmd.Host == s.Host {
			s.OnDrain(cmd.Name == Drain)
			result = "acted"
		}
		logger.Info("control command", "command", cmd.Name, "host", cmd.Host, "outcome", result)
		return
	}
	var live bool
	var pending int
	switch cmd.Name {
	case KillSession:
		live, pending = s.Target.KillSession(cmd.Channel)
	case CloseStream:
		live, pending = s.Target.CloseStream(cmd.Channel, cmd.StreamID)
	}
	attrs := []any{"command", cmd.Name, "channel", cmd.Channel, "outcome", outcome(live, pending)}
	if cmd.Name == CloseStream {
		attrs = append(attrs, "stream_id", logging.Clip(cmd.StreamID))
	}
	if pending > 0 {
		attrs = append(attrs, "pending_publishes", pending)
	}
	logger.Info("control command", attrs...)
}

// outcome describes what a command did: to a live publication, to
// publishes waiting to go live, to both, or nothing.
func outcome(live bool, pending int) string {
	switch {
	case live && pending > 0:
		return "acted, and applied to pending publish"
	case live:
		return "acted"
	case pending > 0:
		return "applied to pending publish"
	}
	return "not held by this server"
}

func isTimeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout())
}

// orDefault returns d, or def when d is zero.
func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}
