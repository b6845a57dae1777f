package daemon

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/rtmp-server/rtmp-server/internal/config"
	"github.com/rtmp-server/rtmp-server/internal/fleet"
	"github.com/rtmp-server/rtmp-server/internal/logging"
	"github.com/rtmp-server/rtmp-server/internal/server"
)

// startFleet makes this box a member of the fleet (FLEET=YES): the server
// asks the fleet before each publish goes live, and the fleet keeps the
// claims and the registry entry until stopFleet. It must run before Serve.
func (d *daemon) startFleet(cfg config.Config) error {
	if !cfg.Fleet.Use {
		return nil
	}
	opts, err := fleet.RedisOptions(cfg.Redis.Addr(), cfg.Redis.Password.Reveal(), cfg.Redis.TLS)
	if err != nil {
		return err
	}
	f, err := fleet.New(fleet.Config{
		Host:           cfg.RTMPHost,
		Prefix:         cfg.Fleet.KeyPrefix,
		TTL:            cfg.Fleet.ClaimTTL,
		RefuseWhenDown: cfg.Fleet.RefuseWhenRedisDown,
		CommandChannel: cfg.Redis.Channel,
		Load:           d.fleetLoad,
		Streams:        d.srv,
		Logger:         d.log,
	}, opts)
	if err != nil {
		return err
	}
	// The Redis client library's own lines (one per failed dial, every
	// few seconds during an outage) go to the debug log: the fleet and
	// the subscriber log each outage once.
	redis.SetLogger(redisLog{d.log})
	d.fleet = f
	d.srv.Admission = f
	f.Start()
	d.log.Info("fleet member", "box", cfg.RTMPHost, "claim_keys", f.StreamKey("CHANNEL"), "box_key", f.BoxKey(), "claim_ttl", cfg.Fleet.ClaimTTL)
	return nil
}

// fleetLoad is what the registry entry reports.
func (d *daemon) fleetLoad() fleet.Load {
	st := d.srv.Hub().Stats()
	return fleet.Load{
		Publishers: st.Publishers,
		Players:    st.Players,
		BytesIn:    st.BytesIn,
		BytesOut:   st.BytesOut,
		Draining:   d.srv.Draining() != server.DrainOff,
	}
}

// stopFleet releases what is left and removes the registry entry; after
// the server's Shutdown.
func (d *daemon) stopFleet() {
	if d.fleet == nil {
		return
	}
	if err := d.fleet.Close(); err != nil {
		d.log.Warn("fleet: closing the Redis connection", "err", err)
	}
}

// fleetRestartOnly lists the fleet variables whose change needs a restart.
func fleetRestartOnly(old, cfg config.Config) []string {
	var names []string
	if old.Fleet != cfg.Fleet {
		names = append(names, "FLEET")
	}
	if old.Fleet.Use && old.RTMPHost != cfg.RTMPHost {
		names = append(names, "RTMP_HOST (the fleet's name of this box)")
	}
	if old.Fleet.Use && (old.Redis.Addr() != cfg.Redis.Addr() || old.Redis.Password != cfg.Redis.Password ||
		old.Redis.TLS != cfg.Redis.TLS || old.Redis.Channel != cfg.Redis.Channel) {
		names = append(names, "REDIS_* (the fleet's connection; the command subscriber reconnects at once)")
	}
	return names
}

// setDrain drains the box (refuses new publishes, asks publishers that can
// reconnect to do so, reports it in the registry, /readyz and STATUS=) or
// ends draining. source says who asked, for the log.
func (d *daemon) setDrain(on bool, source string) {
	d.drainMu.Lock()
	defer d.drainMu.Unlock()
	was := d.srv.Draining() != server.DrainOff
	if on == was {
		d.log.Info("drain: no change", "draining", on, "source", source)
		return
	}
	if on {
		d.srv.Drain(server.DrainPublishes)
		n := d.srv.RequestReconnect()
		d.log.Info("draining: new publishes refused; live streams go on", "source", source, "reconnect_requests", n)
		_ = d.notifier.Status("draining: new publishes refused")
	} else {
		d.srv.Drain(server.DrainOff)
		d.log.Info("drain ended: new publishes taken", "source", source)
		_ = d.notifier.Status("taking publishes")
	}
	if d.fleet != nil {
		d.fleet.Touch()
	}
}

// drainStatus is the STATUS= suffix while draining.
func (d *daemon) drainStatus() string {
	if d.srv.Draining() != server.DrainOff {
		return "; draining"
	}
	return ""
}

// drainSource names a reload's DRAIN setting for the log.
func drainSource(on bool) string {
	return fmt.Sprintf("reload: DRAIN=%s", map[bool]string{true: "YES", false: "NO"}[on])
}

// redisLog takes the Redis client library's messages into the debug log.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.Debug("redis client", "detail", logging.ClipN(fmt.Sprintf(format, v...), 256))
}
