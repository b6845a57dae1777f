package daemon

import (
	"context"

	"github.com/rtmp-server/rtmp-server/internal/config"
)

// reload re-reads the configuration (SIGHUP, systemctl reload). An invalid
// file changes nothing. Settings that need new sockets are logged as
// needing a restart; everything else applies to new sessions and checks.
func (d *daemon) reload() {
	if err := d.notifier.Reloading(); err != nil {
		d.log.Warn("sd_notify RELOADING failed", "err", err)
	}
	defer func() { _ = d.notifier.Ready() }()
	d.log.Info("reloading configuration", "path", d.opts.ConfigPath)

	cfg, warnings, err := load(d.opts)
	if err != nil {
		d.log.Error("reload: invalid configuration; still running on the previous one", "err", err)
		return
	}
	for _, warn := range warnings {
		d.log.Warn("configuration: " + warn)
	}
	old := d.cfg
	for _, name := range append(restartOnly(old, cfg), fleetRestartOnly(old, cfg)...) {
		d.log.Warn("reload: setting changed but needs restart", "variable", name)
	}
	cfg.Fleet = old.Fleet
	// The listeners stay as they are; keep reporting what is in use.
	cfg.RTMPPort, cfg.BindAddress, cfg.SSLPort, cfg.SSLCheckReload = old.RTMPPort, old.BindAddress, old.SSLPort, old.SSLCheckReload
	if old.TLSEnabled() != cfg.TLSEnabled() {
		cfg.SSLCert, cfg.SSLKey = old.SSLCert, old.SSLKey
	}
	cfg.AdminAddress, cfg.AdminToken = old.AdminAddress, old.AdminToken

	opts := serverOptions(cfg)
	if err := opts.Validate(); err != nil {
		d.log.Error("reload: server settings rejected; still running on the previous configuration", "err", err)
		return
	}
	if err := d.callbacks.apply(cfg, d.srv); err != nil {
		d.log.Error("reload: callback settings rejected; still running on the previous configuration", "err", err)
		return
	}
	_ = d.srv.SetOptions(opts) // validated above
	applyForwards(d.forwards, old, cfg, d.log)
	d.applyLogLevel(cfg)
	if d.redis.restartIfChanged(context.Background(), cfg, d.controlTarget(), d.log) {
		d.log.Info("reload: Redis subscriber restarted with new settings")
	}
	if d.certs != nil {
		var err error
		if cfg.SSLCert != old.SSLCert || cfg.SSLKey != old.SSLKey {
			_, err = d.certs.SetFiles(cfg.SSLCert, cfg.SSLKey)
		} else {
			_, err = d.certs.Reload(true)
		}
		if err != nil {
			d.log.Error("reload: certificate not replaced; still serving the previous one", "err", err)
		}
	}
	if cfg.Drain != old.Drain {
		d.setDrain(cfg.Drain, drainSource(cfg.Drain))
	}
	d.cfg = cfg
	d.log.Info("configuration reloaded")
	d.logConfig(cfg)
}

// restartOnly lists the variables whose change needs a restart.
func restartOnly(old, cfg config.Config) []string {
	var names []string
	if old.RTMPPort != cfg.RTMPPort {
		names = append(names, "RTMP_PORT")
	}
	if old.BindAddress != cfg.BindAddress {
		names = append(names, "BIND_ADDRESS")
	}
	if old.SSLPort != cfg.SSLPort {
		names = append(names, "SSL_PORT")
	}
	if old.TLSEnabled() != cfg.TLSEnabled() {
		names = append(names, "SSL_CERT")
	}
	if old.SSLCheckReload != cfg.SSLCheckReload {
		names = append(names, "SSL_CHECK_RELOAD_SECONDS")
	}
	if old.AdminAddress != cfg.AdminAddress {
		names = append(names, "ADMIN_ADDRESS")
	}
	if old.AdminToken != cfg.AdminToken {
		names = append(names, "ADMIN_TOKEN")
	}
	return names
}
