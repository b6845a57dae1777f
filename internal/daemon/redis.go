package daemon

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/rtmp-server/rtmp-server/internal/config"
	"github.com/rtmp-server/rtmp-server/internal/control"
)

// redisControl runs the Redis command subscriber, restarting it when its
// settings change on reload.
type redisControl struct {
	settings config.Redis
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	current  atomic.Pointer[control.Subscriber] // the running subscriber, for the metrics
	onDrain  func(drain bool)                   // applies drain>RTMP_HOST and undrain>RTMP_HOST
}

func (r *redisControl) start(parent context.Context, cfg config.Config, target control.Target, log *slog.Logger) {
	r.settings = cfg.Redis
	if !cfg.Redis.Use {
		return
	}
	ctx, cancel := context.WithCancel(parent)
	r.cancel = cancel
	sub := &control.Subscriber{
		Addr:     cfg.Redis.Addr(),
		Password: cfg.Redis.Password.Reveal(),
		Channel:  cfg.Redis.Channel,
		TLS:      cfg.Redis.TLS,
		Target:   target,
		Logger:   log,
		Host:     cfg.RTMPHost,
		OnDrain:  r.onDrain,
	}
	r.current.Store(sub)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		_ = sub.Run(ctx)
	}()
}

func (r *redisControl) stop() {
	if r.cancel != nil {
		r.cancel()
		r.cancel = nil
	}
	r.wg.Wait()
	r.current.Store(nil)
}

// restartIfChanged applies new Redis settings; it reports whether it did.
func (r *redisControl) restartIfChanged(parent context.Context, cfg config.Config, target control.Target, log *slog.Logger) bool {
	if cfg.Redis == r.settings {
		return false
	}
	r.stop()
	r.start(parent, cfg, target, log)
	return true
}
