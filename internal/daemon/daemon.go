// Package daemon builds the running process from its configuration: the
// listeners (socket-activated or bound), the server and its collaborators
// (event callbacks, Redis commands, certificates), systemd notifications
// and the watchdog, and the signals for reload and shutdown.
package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/certs"
	"github.com/rtmp-server/rtmp-server/internal/config"
	"github.com/rtmp-server/rtmp-server/internal/fleet"
	"github.com/rtmp-server/rtmp-server/internal/forward"
	"github.com/rtmp-server/rtmp-server/internal/logging"
	"github.com/rtmp-server/rtmp-server/internal/sd"
	"github.com/rtmp-server/rtmp-server/internal/server"
)

// Timing of the process as a whole.
const (
	// ShutdownTimeout bounds ending the sessions on SIGTERM.
	ShutdownTimeout = 10 * time.Second
	// StopDeliveryTimeout bounds waiting for pending stop events after that;
	// both together stay well inside systemd's default 90 s stop timeout.
	StopDeliveryTimeout = 10 * time.Second
	// StatusInterval is how often STATUS= is refreshed for systemctl status.
	StatusInterval = 10 * time.Second
)

// Socket names expected from systemd (FileDescriptorName=).
const (
	socketRTMP  = "rtmp"
	socketRTMPS = "rtmps"
)

// Options are what the command line decides.
type Options struct {
	ConfigPath     string
	ConfigRequired bool // the path was given explicitly: a missing file is an error
	Version        string
}

func load(opts Options) (config.Config, []string, error) {
	return config.Load(opts.ConfigPath, opts.ConfigRequired, os.LookupEnv)
}

// CheckConfig validates the configuration and prints a summary to w.
func CheckConfig(opts Options, w io.Writer) error {
	cfg, warnings, err := load(opts)
	if err != nil {
		return err
	}
	for _, warn := range warnings {
		fmt.Fprintln(w, "warning:", warn)
	}
	if cfg.TLSEnabled() {
		if _, err := certs.Load(cfg.SSLCert, cfg.SSLKey, nil); err != nil {
			return fmt.Errorf("SSL_CERT/SSL_KEY: %w", err)
		}
	}
	fmt.Fprintf(w, "configuration OK (rtmp %s", cfg.RTMPAddr())
	if cfg.TLSEnabled() {
		fmt.Fprintf(w, ", rtmps %s", cfg.SSLAddr())
	}
	fmt.Fprintln(w, ")")
	return nil
}

// Run runs the server until SIGTERM or SIGINT.
func Run(opts Options) error {
	cfg, warnings, err := load(opts)
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	level := new(slog.LevelVar)
	logger := logging.New(level)
	d := &daemon{opts: opts, log: logger, level: level, notifier: sd.NewNotifier(), fatal: make(chan error, 4)}
	for _, warn := range warnings {
		logger.Warn("configuration: " + warn)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	drainSig := make(chan os.Signal, 1)
	signal.Notify(drainSig, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(drainSig)
	d.drainSig = drainSig
	return d.run(ctx, cfg, hup)
}

// daemon is the running process. Its fields are owned by the goroutine in
// run, except where noted.
type daemon struct {
	opts     Options
	log      *slog.Logger
	level    *slog.LevelVar
	notifier *sd.Notifier

	cfg       config.Config
	srv       *server.Server
	certs     *certs.Reloader // nil without TLS
	callbacks callbacks
	redis     redisControl
	admin     monitor
	forwards  *forward.Manager

	fatal   chan error // accept loops that failed
	serveWG sync.WaitGroup
	stored  []*os.File  // from the file descriptor store, until adopted (handover.go)
	resumed resumedLine // what adopt resumed, shown in STATUS= for a while (handover.go)

	fleet    *fleet.Fleet     // nil unless FLEET=YES
	drainMu  sync.Mutex       // serialises drain changes
	drainSig <-chan os.Signal // SIGUSR1 (drain), SIGUSR2 (undrain)
}

// logConfig logs the effective settings, one line per group, secrets
// redacted.
func (d *daemon) logConfig(cfg config.Config) {
	for _, g := range cfg.LogGroups() {
		d.log.LogAttrs(context.Background(), slog.LevelInfo, "config", append([]slog.Attr{slog.String("group", g.Name)}, g.Attrs...)...)
	}
}

func (d *daemon) run(ctx context.Context, cfg config.Config, hup <-chan os.Signal) error {
	d.cfg = cfg
	d.applyLogLevel(cfg)
	d.log.Info("starting", "version", d.opts.Version)
	d.logConfig(cfg)

	lns, err := d.listeners(cfg)
	if err != nil {
		return err
	}
	d.srv, err = server.New(serverOptions(cfg), d.log)
	if err != nil {
		closeAll(lns)
		return err
	}
	d.forwards = startForwards(cfg, d.srv, d.log)
	srv := d.srv
	d.srv.Observer = server.RequestLog(d.log, func() bool { return srv.Options().LogRequests })
	if err := d.startAdmin(cfg); err != nil {
		closeAll(lns)
		return err
	}
	d.callbacks.log, d.callbacks.metrics = d.log, d.admin.metrics
	if err := d.callbacks.apply(cfg, d.srv); err != nil {
		d.stopAdmin()
		closeAll(lns)
		return err
	}

	if err := d.startFleet(cfg); err != nil {
		d.stopAdmin()
		closeAll(lns)
		return err
	}
	if cfg.Drain {
		d.setDrain(true, "DRAIN=YES")
	}
	d.redis.onDrain = func(on bool) { d.setDrain(on, "redis") }
	if len(d.stored) > 0 {
		d.adopt(d.stored)
		d.stored = nil
	}

	bg, cancelBG := context.WithCancel(context.Background())
	var bgWG sync.WaitGroup
	defer func() {
		cancelBG()
		bgWG.Wait()
	}()
	d.redis.start(bg, cfg, d.controlTarget(), d.log)
	for name, ln := range lns {
		d.serve(name, ln)
	}
	if d.certs != nil {
		bgWG.Add(1)
		go func() {
			defer bgWG.Done()
			d.certs.Watch(bg, cfg.SSLCheckReload)
		}()
	}
	bgWG.Add(2)
	go func() {
		defer bgWG.Done()
		d.notifier.Watchdog(bg, d.healthy, d.log)
	}()
	go func() {
		defer bgWG.Done()
		d.reportStatus(bg)
	}()
	if err := d.notifier.Ready(); err != nil {
		d.log.Warn("sd_notify READY failed", "err", err)
	}
	d.admin.ready.Store(true)
	d.log.Info("ready")

	for {
		select {
		case <-hup:
			d.reload()
			continue
		case sig := <-d.drainSig:
			d.setDrain(sig == syscall.SIGUSR1, "signal "+sig.String())
			continue
		case <-ctx.Done():
			d.handOver()
		case err := <-d.fatal:
			d.log.Error("listener failed", "err", err)
		}
		break
	}
	return d.shutdown()
}

// listeners takes the sockets systemd passed, or binds its own.
func (d *daemon) listeners(cfg config.Config) (map[string]net.Listener, error) {
	passed, err := sd.ListenersAndStore(storePrefix, socketRTMP, socketRTMPS, socketAdmin)
	if err != nil {
		return nil, err
	}
	activated := passed.Listeners
	d.stored = passed.Stored
	d.admin.fromSystemd = activated[socketAdmin]
	delete(activated, socketAdmin)
	lns := make(map[string]net.Listener)
	fail := func(err error) (map[string]net.Listener, error) {
		closeAll(activated)
		closeAll(lns)
		return nil, err
	}
	if ln, ok := activated[socketRTMP]; ok {
		lns[socketRTMP] = ln
		d.log.Info("listening", "proto", "rtmp", "addr", ln.Addr().String(), "from", "systemd")
	} else if len(activated) == 0 {
		ln, err := net.Listen("tcp", cfg.RTMPAddr())
		if err != nil {
			return fail(fmt.Errorf("RTMP_PORT/BIND_ADDRESS: %w", err))
		}
		lns[socketRTMP] = ln
		d.log.Info("listening", "proto", "rtmp", "addr", ln.Addr().String())
	}
	tlsLn, fromSystemd := activated[socketRTMPS]
	switch {
	case fromSystemd && !cfg.TLSEnabled():
		return fail(errors.New("systemd passed an rtmps socket but SSL_CERT and SSL_KEY are not set"))
	case cfg.TLSEnabled():
		rl, err := certs.Load(cfg.SSLCert, cfg.SSLKey, d.log)
		if err != nil {
			return fail(fmt.Errorf("SSL_CERT/SSL_KEY: %w", err))
		}
		d.certs = rl
		if !fromSystemd {
			if len(activated) > 0 {
				d.log.Warn("SSL_CERT is set but systemd passed no rtmps socket; enable rtmp-server-rtmps.socket")
				break
			}
			tlsLn, err = net.Listen("tcp", cfg.SSLAddr())
			if err != nil {
				return fail(fmt.Errorf("SSL_PORT/BIND_ADDRESS: %w", err))
			}
		}
		lns[socketRTMPS] = tls.NewListener(tlsLn, rl.TLSConfig())
		d.log.Info("listening", "proto", "rtmps", "addr", tlsLn.Addr().String(), "certificate_serial", rl.Serial().String())
	}
	if len(lns) == 0 {
		return fail(errors.New("no listener: systemd passed no rtmp socket"))
	}
	return lns, nil
}

func closeAll(lns map[string]net.Listener) {
	for _, ln := range lns {
		_ = ln.Close()
	}
}

// serve runs one accept loop; one that ends with an error ends the process
// (systemd restarts it) rather than leaving it deaf.
func (d *daemon) serve(name string, ln net.Listener) {
	d.serveWG.Add(1)
	go func() {
		defer d.serveWG.Done()
		err := d.srv.Serve(ln)
		if errors.Is(err, server.ErrServerClosed) {
			return
		}
		select {
		case d.fatal <- fmt.Errorf("%s accept loop: %w", name, err):
		default:
		}
	}()
}

// healthy is the watchdog's check: Server.Healthy (every accept loop runs,
// the stream registry answers within ctx's deadline).
func (d *daemon) healthy(ctx context.Context) error {
	return d.srv.Healthy(ctx)
}

func (d *daemon) reportStatus(ctx context.Context) {
	if !d.notifier.Enabled() {
		return
	}
	t := time.NewTicker(StatusInterval)
	defer t.Stop()
	var lastIn, lastOut uint64
	last := time.Now()
	for {
		st := d.srv.Hub().Stats()
		now := time.Now()
		secs := max(now.Sub(last).Seconds(), 1)
		_ = d.notifier.Status(d.resumedStatus(now) + fmt.Sprintf("%d publishers, %d players; in %s/s, out %s/s%s",
			st.Publishers, st.Players, bytesText(float64(st.BytesIn-lastIn)/secs), bytesText(float64(st.BytesOut-lastOut)/secs), d.drainStatus()))
		lastIn, lastOut, last = st.BytesIn, st.BytesOut, now
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func bytesText(b float64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}

func (d *daemon) applyLogLevel(cfg config.Config) {
	if cfg.LogDebug {
		d.level.Set(slog.LevelDebug)
	} else {
		d.level.Set(slog.LevelInfo)
	}
}

// shutdown stops accepting, ends sessions (players get end-of-stream,
// publishers' stop events are queued), then waits for the stop events.
func (d *daemon) shutdown() error {
	_ = d.notifier.Stopping()
	d.admin.ready.Store(false)
	d.log.Info("shutting down")
	d.redis.stop()
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	err := d.srv.Shutdown(ctx)
	cancel()
	if err != nil {
		d.log.Warn("sessions did not end in time; closed them", "timeout", ShutdownTimeout)
	}
	d.serveWG.Wait()
	d.forwards.Close()
	d.stopFleet()
	ctx, cancel = context.WithTimeout(context.Background(), StopDeliveryTimeout)
	defer cancel()
	if err := d.callbacks.close(ctx); err != nil {
		d.log.Error("stop events not delivered before exit", "err", err)
	}
	d.stopAdmin()
	d.log.Info("stopped")
	return nil
}
