package daemon

import (
	"context"
	"log/slog"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/config"
	"github.com/rtmp-server/rtmp-server/internal/forward"
	"github.com/rtmp-server/rtmp-server/internal/server"
)

// forwardConfig maps the configuration onto the forwarder's.
func forwardConfig(cfg config.Config) forward.Config {
	return forward.Config{Templates: cfg.ForwardURLs, Insecure: cfg.ForwardTLSInsecure}
}

// startForwards makes the server's forwarder; it runs for the process's
// life, and a reload changes its configuration for new publishes.
func startForwards(cfg config.Config, srv *server.Server, log *slog.Logger) *forward.Manager {
	m := forward.New(srv.Hub(), log, forwardConfig(cfg))
	srv.Forwarder = m
	warnInsecureForwards(cfg, log)
	return m
}

// applyForwards applies a reloaded configuration to new publishes.
func applyForwards(m *forward.Manager, old, cfg config.Config, log *slog.Logger) {
	m.SetConfig(forwardConfig(cfg))
	if !old.ForwardTLSInsecure {
		warnInsecureForwards(cfg, log)
	}
}

func warnInsecureForwards(cfg config.Config, log *slog.Logger) {
	if cfg.ForwardTLSInsecure {
		log.Warn("FORWARD_TLS_INSECURE=YES: the certificates of rtmps:// forward targets are not verified; for lab use only")
	}
}

// StartForwards is Start, also returning the start callback's forward-url
// headers.
func (a authorizer) StartForwards(ctx context.Context, ev server.PublishEvent) (string, []string, error) {
	start := time.Now()
	id, urls, err := a.c.StartForwards(ctx, event(ev))
	a.metrics.CallbackDone("start", callbackOutcome(err), time.Since(start))
	return id, urls, err
}
