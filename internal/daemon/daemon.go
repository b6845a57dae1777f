// Package daemon builds the running process from its configuration: the
// listeners, the server and its collaborators, and the signal handling for
// reload and shutdown.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/config"
	"github.com/rtmp-server/rtmp-server/internal/server"
)

// ShutdownTimeout bounds a graceful stop, well inside systemd's default 90 s.
const ShutdownTimeout = 15 * time.Second

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
	if cfg.LogDebug {
		level.Set(slog.LevelDebug)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	for _, warn := range warnings {
		logger.Warn(warn)
	}

	ln, err := net.Listen("tcp", cfg.RTMPAddr())
	if err != nil {
		return err
	}
	srv := server.New(cfg, logger)
	logger.Info("listening", "proto", "rtmp", "addr", ln.Addr().String(), "version", opts.Version)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		if !errors.Is(err, server.ErrServerClosed) {
			return err
		}
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	return srv.Shutdown(sctx)
}
