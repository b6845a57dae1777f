package sd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// Notifier sends sd_notify(3) messages to the service manager over the
// datagram socket named by NOTIFY_SOCKET. When the process was not started
// with NOTIFY_SOCKET, every method is a no-op that returns nil, so callers
// need not check Enabled first.
//
// A Notifier is immutable after NewNotifier and safe for concurrent use.
type Notifier struct {
	addr     *net.UnixAddr // nil when NOTIFY_SOCKET is unset; immutable
	watchdog time.Duration // 0 when the watchdog is off; immutable
}

// NewNotifier reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID once. The
// watchdog is on only when WATCHDOG_USEC is a positive number, WATCHDOG_PID is
// unset or names this process, and NOTIFY_SOCKET is set; a malformed value
// turns it off.
func NewNotifier() *Notifier {
	n := &Notifier{}
	if path := os.Getenv("NOTIFY_SOCKET"); path != "" {
		// A leading '@' names an abstract socket; package net maps it.
		n.addr = &net.UnixAddr{Name: path, Net: "unixgram"}
	}
	if n.addr != nil {
		if interval, err := daemon.SdWatchdogEnabled(false); err == nil {
			n.watchdog = interval
		}
	}
	return n
}

// Enabled reports whether NOTIFY_SOCKET was set, that is whether messages go
// anywhere.
func (n *Notifier) Enabled() bool { return n.addr != nil }

// Ready tells systemd that start-up, or a reload, has finished: "READY=1".
func (n *Notifier) Ready() error { return n.send(daemon.SdNotifyReady) }

// Reloading tells systemd that the service is reloading its configuration;
// Ready ends the reload. The message carries the CLOCK_MONOTONIC time that
// systemd 253+ requires for Type=notify-reload.
func (n *Notifier) Reloading() error {
	if n.addr == nil {
		return nil
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return fmt.Errorf("sd: notify: reading CLOCK_MONOTONIC: %w", err)
	}
	usec := ts.Nano() / int64(time.Microsecond)
	return n.send(daemon.SdNotifyReloading + "\nMONOTONIC_USEC=" + strconv.FormatInt(usec, 10))
}

// Stopping tells systemd that the service is shutting down: "STOPPING=1".
func (n *Notifier) Stopping() error { return n.send(daemon.SdNotifyStopping) }

// Status sets the one-line status that `systemctl status` shows. Newlines in
// s are replaced by spaces, as a newline would start another assignment.
func (n *Notifier) Status(s string) error {
	return n.send("STATUS=" + stripNewlines(s))
}

// WatchdogInterval returns the WatchdogSec= of the unit, or 0 when the
// watchdog is off: WATCHDOG_USEC unset, WATCHDOG_PID naming another process,
// or NOTIFY_SOCKET unset.
func (n *Notifier) WatchdogInterval() time.Duration { return n.watchdog }

// send writes one datagram holding state to the notify socket.
func (n *Notifier) send(state string) error {
	if n.addr == nil {
		return nil
	}
	// A new socket per message keeps working when systemd re-executes
	// itself and binds the notify socket anew.
	conn, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd: notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd: notify: %w", err)
	}
	return nil
}

func stripNewlines(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '\n' || c == '\r' {
			b[i] = ' '
		}
	}
	return string(b)
}

// errLateCheck is the failure recorded for a health check that returned only
// after its deadline.
var errLateCheck = errors.New("sd: health check returned after its deadline")

// Watchdog keeps systemd's watchdog (WatchdogSec=) fed while the process is
// healthy. Every interval/2 it calls healthy with a context whose deadline is
// interval/4 and sends "WATCHDOG=1" only when healthy returns nil before that
// deadline. While checks fail it sends nothing, so systemd kills and restarts
// a wedged process; the failure is logged once when it starts and the
// recovery once when it ends.
//
// healthy must return when its context ends; one that never returns stops
// the pings too, which is the intended outcome for a wedged process.
// Watchdog returns when ctx ends, or at once when the watchdog is off.
func (n *Notifier) Watchdog(ctx context.Context, healthy func(context.Context) error, logger *slog.Logger) {
	interval := n.WatchdogInterval()
	if interval <= 0 {
		return
	}
	ticker := time.NewTicker(interval / 2)
	defer ticker.Stop()

	failing := false
	for {
		err := n.checkAndPing(ctx, healthy, interval/4)
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil && !failing:
			logger.Error("watchdog: withholding keep-alive", "err", err)
		case err == nil && failing:
			logger.Info("watchdog: healthy again, keep-alive resumed")
		}
		failing = err != nil

		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// checkAndPing runs one health check bounded by timeout and, when it passes,
// sends "WATCHDOG=1".
func (n *Notifier) checkAndPing(ctx context.Context, healthy func(context.Context) error, timeout time.Duration) error {
	checkCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := healthy(checkCtx); err != nil {
		return fmt.Errorf("sd: health check: %w", err)
	}
	if checkCtx.Err() != nil {
		return errLateCheck
	}
	return n.send(daemon.SdNotifyWatchdog)
}
