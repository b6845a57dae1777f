package daemon

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/admin"

	"github.com/rtmp-server/rtmp-server/internal/callback"
	"github.com/rtmp-server/rtmp-server/internal/config"
	"github.com/rtmp-server/rtmp-server/internal/server"
)

// callbacks owns the event-callback client. There is at most one, made
// when callbacks are first turned on and kept until shutdown: a reload
// changes its settings or turns it off, so every pending stop event, however
// old, is retried with the settings current at that moment.
type callbacks struct {
	log     *slog.Logger
	metrics *admin.Metrics                  // nil without the admin listener
	client  *callback.Client                // nil until CALLBACK_URL is first set
	current atomic.Pointer[callback.Client] // client, for the metrics
}

func callbackConfig(cfg config.Config) callback.Config {
	return callback.Config{
		URL:     cfg.CallbackURL,
		Secret:  cfg.JWTSecret.Reveal(),
		Subject: cfg.JWTSubject,
		Host:    cfg.RTMPHost,
		Port:    cfg.RTMPPort,
		Timeout: cfg.CallbackTimeout,
	}
}

// apply makes srv authorise publishes as cfg says. With CALLBACK_URL empty,
// publishes are accepted and pending stop events wait for callbacks to be
// turned back on (within their retry window).
func (c *callbacks) apply(cfg config.Config, srv *server.Server) error {
	if cfg.CallbackURL == "" {
		srv.SetAuthorizer(nil)
		if c.client != nil {
			c.client.Disable()
		}
		return nil
	}
	if c.client != nil {
		if err := c.client.SetConfig(callbackConfig(cfg)); err != nil {
			return err
		}
	} else {
		client, err := callback.New(callbackConfig(cfg), c.log)
		if err != nil {
			return err
		}
		if c.metrics != nil {
			client.SetReporter(callbackMetrics{c.metrics})
		}
		c.client = client
		c.current.Store(client)
	}
	srv.SetAuthorizer(authorizer{c.client})
	return nil
}

// close waits for the pending stop events.
func (c *callbacks) close(ctx context.Context) error {
	if c.client == nil {
		return nil
	}
	return c.client.Close(ctx)
}

// authorizer adapts a callback client to the server's Authorizer.
type authorizer struct {
	c *callback.Client
}

func event(ev server.PublishEvent) callback.Event {
	return callback.Event{Channel: ev.Channel, Key: ev.Key, ClientIP: ev.ClientIP, StreamID: ev.StreamID, Session: ev.Session}
}

func (a authorizer) Start(ctx context.Context, ev server.PublishEvent) (string, error) {
	return a.c.Start(ctx, event(ev))
}

func (a authorizer) Stop(ev server.PublishEvent) { a.c.Stop(event(ev)) }

// callbackMetrics counts the callback client's requests (start, and each
// attempt of a stop) by outcome, and the stop events it gives up.
type callbackMetrics struct{ m *admin.Metrics }

func (r callbackMetrics) Request(event string, err error, took time.Duration) {
	r.m.CallbackDone(event, callbackOutcome(err), took)
}

func (r callbackMetrics) StopLost(reason string) { r.m.CallbackStopLost(reason) }
