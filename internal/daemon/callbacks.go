package daemon

import (
	"context"
	"errors"
	"log/slog"

	"github.com/rtmp-server/rtmp-server/internal/callback"
	"github.com/rtmp-server/rtmp-server/internal/config"
	"github.com/rtmp-server/rtmp-server/internal/server"
)

// callbacks owns the event-callback clients. A publication is stopped
// through the client that approved it, so a client removed by a reload is
// kept until shutdown to deliver its pending stop events.
type callbacks struct {
	log     *slog.Logger
	current *callback.Client   // nil when CALLBACK_URL is empty
	all     []*callback.Client // every client created, closed at shutdown
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

// apply makes srv authorise publishes as cfg says.
func (c *callbacks) apply(cfg config.Config, srv *server.Server) error {
	if cfg.CallbackURL == "" {
		c.current = nil
		srv.SetAuthorizer(nil)
		return nil
	}
	if c.current != nil {
		if err := c.current.SetConfig(callbackConfig(cfg)); err != nil {
			return err
		}
		return nil
	}
	client, err := callback.New(callbackConfig(cfg), c.log)
	if err != nil {
		return err
	}
	c.current = client
	c.all = append(c.all, client)
	srv.SetAuthorizer(authorizer{client})
	return nil
}

// close waits for every client's pending stop events.
func (c *callbacks) close(ctx context.Context) error {
	var errs []error
	for _, client := range c.all {
		errs = append(errs, client.Close(ctx))
	}
	return errors.Join(errs...)
}

// authorizer adapts a callback client to the server's Authorizer.
type authorizer struct{ c *callback.Client }

func event(ev server.PublishEvent) callback.Event {
	return callback.Event{Channel: ev.Channel, Key: ev.Key, ClientIP: ev.ClientIP, StreamID: ev.StreamID, Session: ev.Session}
}

func (a authorizer) Start(ctx context.Context, ev server.PublishEvent) (string, error) {
	return a.c.Start(ctx, event(ev))
}

func (a authorizer) Stop(ev server.PublishEvent) { a.c.Stop(event(ev)) }
