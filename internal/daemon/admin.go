package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/admin"
	"github.com/rtmp-server/rtmp-server/internal/callback"
	"github.com/rtmp-server/rtmp-server/internal/config"
	"github.com/rtmp-server/rtmp-server/internal/control"
	"github.com/rtmp-server/rtmp-server/internal/server"
)

// socketAdmin is the name of the monitoring socket from systemd
// (rtmp-server-admin.socket, FileDescriptorName=admin).
const socketAdmin = "admin"

// adminShutdownTimeout bounds the admin requests in flight at exit.
const adminShutdownTimeout = 2 * time.Second

// monitor runs the admin listener. Its fields are owned by the daemon's
// goroutine, except ready, which the listener reads.
type monitor struct {
	fromSystemd net.Listener // the "admin" socket systemd passed, if any
	srv         *admin.Server
	metrics     *admin.Metrics // nil while the listener is off
	ready       atomic.Bool    // publishes are accepted
	wg          sync.WaitGroup
}

// startAdmin serves the admin endpoints on the socket systemd passed or on
// ADMIN_ADDRESS; with neither, monitoring is off.
func (d *daemon) startAdmin(cfg config.Config) error {
	m := &d.admin
	ln := m.fromSystemd
	from := "systemd"
	if ln == nil {
		if cfg.AdminAddress == "" {
			d.log.Info("admin listener off (ADMIN_ADDRESS is empty)")
			return nil
		}
		var err error
		if ln, err = net.Listen("tcp", cfg.AdminAddress); err != nil {
			return fmt.Errorf("ADMIN_ADDRESS: %w", err)
		}
		from = "ADMIN_ADDRESS"
	}
	m.metrics = admin.NewMetrics(d.srv.Hub())
	d.addDaemonMetrics(m.metrics)
	addForwardMetrics(m.metrics.Registry(), d.forwards)
	d.srv.Observer = server.Observers(d.srv.Observer, m.metrics.Observe) // before any Serve; after the request log
	m.srv = &admin.Server{
		Source:   d.srv.Hub(),
		Metrics:  m.metrics,
		Forwards: adminForwards(d.forwards),
		Healthy:  d.healthy,
		Ready:    func() bool { return m.ready.Load() && d.srv.Draining() == server.DrainOff },
		Token:    cfg.AdminToken.Reveal(),
		Logger:   d.log.With("listener", "admin"),
	}
	d.log.Info("listening", "proto", "http", "addr", ln.Addr().String(), "from", from, "token", cfg.AdminToken != "")
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := m.srv.Serve(ln); !errors.Is(err, admin.ErrServerClosed) {
			d.log.Error("admin listener stopped", "err", err)
		}
	}()
	return nil
}

// stopAdmin ends the admin listener.
func (d *daemon) stopAdmin() {
	m := &d.admin
	m.ready.Store(false)
	if m.srv == nil {
		if m.fromSystemd != nil {
			_ = m.fromSystemd.Close()
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminShutdownTimeout)
	defer cancel()
	if err := m.srv.Shutdown(ctx); err != nil {
		_ = m.srv.Close()
	}
	m.wg.Wait()
}

// addDaemonMetrics adds what the daemon's collaborators report at scrape
// time.
func (d *daemon) addDaemonMetrics(m *admin.Metrics) {
	m.AddGauge("rtmp_callback_stop_events_pending", "Stop events queued or being retried.", func() float64 {
		if c := d.callbacks.current.Load(); c != nil {
			return float64(c.Pending())
		}
		return 0
	})
	m.AddGauge("rtmp_redis_connected", "1 while the Redis command subscriber is subscribed, else 0.", func() float64 {
		if s := d.redis.current.Load(); s != nil && s.Connected() {
			return 1
		}
		return 0
	})
	if d.certs != nil {
		rl := d.certs
		m.AddGauge("rtmp_certificate_expiry_timestamp_seconds", "notAfter of the RTMPS certificate being served, as a Unix timestamp.", func() float64 {
			return float64(rl.NotAfter().Unix())
		})
		// Before the watcher starts and before any SIGHUP: every failed
		// reload is counted.
		rl.OnFailure(func(error) { m.CertificateReloadFailed() })
		m.CertificatesServed()
	}
}

// callbackOutcome names the outcome of a callback request for metrics.
func callbackOutcome(err error) string {
	switch {
	case err == nil:
		return "accepted"
	case errors.Is(err, callback.ErrDenied), errors.Is(err, callback.ErrRejected):
		return "denied"
	case errors.Is(err, callback.ErrTimeout):
		return "timeout"
	case errors.Is(err, callback.ErrUnreachable):
		return "unreachable"
	case errors.Is(err, callback.ErrNoStreamID):
		return "invalid_response"
	case errors.Is(err, callback.ErrDisabled):
		return "disabled"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "error"
}

// countingTarget counts the control commands applied, by whether they
// reached a publisher of this server.
type countingTarget struct {
	control.Target
	metrics *admin.Metrics
}

func (t countingTarget) KillSession(channel string) (bool, int) {
	live, pending := t.Target.KillSession(channel)
	t.metrics.RedisCommandApplied("kill-session", commandOutcome(live, pending))
	return live, pending
}

func (t countingTarget) CloseStream(channel, streamID string) (bool, int) {
	live, pending := t.Target.CloseStream(channel, streamID)
	t.metrics.RedisCommandApplied("close-stream", commandOutcome(live, pending))
	return live, pending
}

// commandOutcome names what a control command did for metrics: "acted" on
// a live or waiting publish, or "not_held" by this server.
func commandOutcome(live bool, pending int) string {
	if live || pending > 0 {
		return "acted"
	}
	return "not_held"
}

// controlTarget is what Redis commands act on.
func (d *daemon) controlTarget() control.Target {
	return countingTarget{Target: d.srv, metrics: d.admin.metrics}
}
