package daemon

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtmp-server/rtmp-server/internal/admin"
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
	return a.c.StartForwards(ctx, event(ev))
}

// forwardCollector shows the forwards in the metrics: how many are in each
// state, and the counters of them all.
type forwardCollector struct {
	m                                  *forward.Manager
	forwards, bytes, reconnects, skips *prometheus.Desc
}

// forwardStates are the states rtmp_forwards always reports, 0 included.
var forwardStates = []forward.State{forward.StateConnecting, forward.StateLive, forward.StateRetrying}

func addForwardMetrics(reg *prometheus.Registry, m *forward.Manager) {
	reg.MustRegister(&forwardCollector{
		m:          m,
		forwards:   prometheus.NewDesc("rtmp_forwards", "Forwards of live publications to other servers, by state (connecting, live, retrying).", []string{"state"}, nil),
		bytes:      prometheus.NewDesc("rtmp_forward_bytes_total", "Bytes written to forward targets.", nil, nil),
		reconnects: prometheus.NewDesc("rtmp_forward_reconnects_total", "Reconnections to forward targets after a failure.", nil, nil),
		skips:      prometheus.NewDesc("rtmp_forward_skips_total", "Times a forward skipped to the next keyframe because its target was too slow (counted as each connection ends).", nil, nil),
	})
}

func (c *forwardCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.forwards
	ch <- c.bytes
	ch <- c.reconnects
	ch <- c.skips
}

func (c *forwardCollector) Collect(ch chan<- prometheus.Metric) {
	count := make(map[forward.State]int)
	for _, st := range c.m.Forwards() {
		count[st.State]++
	}
	for _, s := range forwardStates {
		ch <- prometheus.MustNewConstMetric(c.forwards, prometheus.GaugeValue, float64(count[s]), string(s))
	}
	t := c.m.Totals()
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(t.Bytes))
	ch <- prometheus.MustNewConstMetric(c.reconnects, prometheus.CounterValue, float64(t.Reconnects))
	ch <- prometheus.MustNewConstMetric(c.skips, prometheus.CounterValue, float64(t.Skips))
}

// adminForwards shows m's forwards in the streams API.
func adminForwards(m *forward.Manager) func() []admin.Forward {
	return func() []admin.Forward {
		all := m.Forwards()
		out := make([]admin.Forward, 0, len(all))
		for _, st := range all {
			out = append(out, admin.Forward{
				Channel: st.Channel, Target: st.Target, State: string(st.State), Since: st.Since,
				BytesSent: st.Bytes, Reconnects: st.Reconnects, QueueSkips: st.Skips, LastError: st.LastError,
			})
		}
		return out
	}
}
