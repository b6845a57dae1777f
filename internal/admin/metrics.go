package admin

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/rtmp-server/rtmp-server/internal/hub"
	"github.com/rtmp-server/rtmp-server/internal/server"
)

// Source is what the admin server reads about the streams: *hub.Hub.
type Source interface {
	Stats() hub.Stats
	StreamStats() []hub.StreamStats
	StreamTotals() []hub.StreamStats
	StreamStatsOf(channel string) (hub.StreamStats, bool)
}

// Bounds of the labels fed by events: peer-influenced values never make
// an unbounded number of series.
const (
	maxLabelLen    = 64
	maxLabelValues = 32 // distinct values per label; later ones count as "other"
)

// Metrics is the Prometheus registry of the admin server. The hub's
// figures, server-wide and per live stream, are read from a snapshot at
// scrape time (the media path updates nothing for it); counters of events
// are fed through the methods below, which are safe for concurrent use and
// do nothing on a nil *Metrics.
type Metrics struct {
	reg *prometheus.Registry

	publishes       *prometheus.CounterVec
	plays           *prometheus.CounterVec
	connections     *prometheus.GaugeVec
	connectionsOpen *prometheus.CounterVec
	playerEvents    *prometheus.CounterVec
	handshakeFails  *prometheus.CounterVec
	callbacks       *prometheus.CounterVec
	callbackLatency *prometheus.HistogramVec
	stopsLost       *prometheus.CounterVec
	redisCommands   *prometheus.CounterVec
	certReloadFails *prometheus.CounterVec

	mu     sync.Mutex
	labels map[string]map[string]bool // guarded by mu: values seen per bounded label

	conns observer // where each open connection stands, for Observe
}

// NewMetrics returns the registry with the Go and process collectors and
// the hub's figures read from src at each scrape.
func NewMetrics(src Source) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), labels: make(map[string]map[string]bool),
		conns: observer{places: make(map[uint64]connPlace)}}
	m.publishes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rtmp_publishes_total", Help: "Publish requests by result (accepted, refused) and refusal reason.",
	}, []string{"result", "reason"})
	m.plays = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rtmp_plays_total", Help: "Play requests by result (accepted, refused) and refusal reason.",
	}, []string{"result", "reason"})
	m.connections = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "rtmp_connections", Help: "Open RTMP connections by role and state.",
	}, []string{"role", "state"})
	m.connectionsOpen = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rtmp_connections_opened_total", Help: "RTMP connections accepted.",
	}, nil)
	m.playerEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rtmp_player_queue_events_total",
		Help: "Players that fell behind: skip (queued media dropped, skipped to a keyframe), slow_disconnect (disconnected).",
	}, []string{"event"})
	m.handshakeFails = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rtmp_handshake_failures_total",
		Help: "RTMP or TLS handshakes that failed, by protocol (rtmp, tls) and reason (timeout, closed, bad_version, invalid).",
	}, []string{"proto", "reason"})
	m.callbacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rtmp_callback_requests_total", Help: "Event callback requests by event and outcome.",
	}, []string{"event", "outcome"})
	m.callbackLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "rtmp_callback_duration_seconds", Help: "Time an event callback request took.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"event"})
	m.stopsLost = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rtmp_callback_stop_events_lost_total",
		Help: "Stop events given up, by reason (retry_window, closed, queue_full).",
	}, []string{"reason"})
	m.redisCommands = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rtmp_redis_commands_total",
		Help: "Redis control commands applied, by command and outcome (acted: a publisher of this server was ended or refused; not_held).",
	}, []string{"command", "outcome"})
	m.certReloadFails = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rtmp_certificate_reload_failures_total", Help: "Certificate reloads that failed (the old pair stays in use).",
	}, nil)
	// The plain RTMP handshake failures show from the start, at 0.
	for _, reason := range []string{server.HandshakeReasonTimeout, server.HandshakeReasonClosed,
		server.HandshakeReasonBadVersion, server.HandshakeReasonInvalid} {
		m.handshakeFails.WithLabelValues(m.bounded("proto", "rtmp"), m.bounded("handshake_reason", reason))
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		hubCollector{src: src},
		m.publishes, m.plays, m.connections, m.connectionsOpen, m.playerEvents, m.handshakeFails,
		m.callbacks, m.callbackLatency, m.stopsLost, m.redisCommands, m.certReloadFails,
	)
	return m
}

// Registry returns the registry, to add collectors to.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// AddGauge registers a gauge read from value at each scrape.
func (m *Metrics) AddGauge(name, help string, value func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, value))
}

// bounded returns v clipped, or "other" once label has maxLabelValues values.
func (m *Metrics) bounded(label, v string) string {
	if len(v) > maxLabelLen {
		v = v[:maxLabelLen]
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := m.labels[label]
	if seen == nil {
		seen = make(map[string]bool)
		m.labels[label] = seen
	}
	if !seen[v] {
		if len(seen) >= maxLabelValues {
			return "other"
		}
		seen[v] = true
	}
	return v
}

// PublishAccepted counts an accepted publish.
func (m *Metrics) PublishAccepted() {
	if m != nil {
		m.publishes.WithLabelValues("accepted", "").Inc()
	}
}

// PublishRefused counts a refused publish with its reason.
func (m *Metrics) PublishRefused(reason string) {
	if m != nil {
		m.publishes.WithLabelValues("refused", m.bounded("publish_reason", reason)).Inc()
	}
}

// PlayAccepted counts an accepted play.
func (m *Metrics) PlayAccepted() {
	if m != nil {
		m.plays.WithLabelValues("accepted", "").Inc()
	}
}

// PlayRefused counts a refused play with its reason.
func (m *Metrics) PlayRefused(reason string) {
	if m != nil {
		m.plays.WithLabelValues("refused", m.bounded("play_reason", reason)).Inc()
	}
}

// ConnectionMoved moves a connection from one role and state to another:
// fromState is empty for a new connection, toState empty for a closed one.
// Roles are "unknown", "publisher" and "player"; states "handshake",
// "connecting", "connected", "publishing" and "playing".
func (m *Metrics) ConnectionMoved(fromRole, fromState, toRole, toState string) {
	if m == nil {
		return
	}
	if fromState == "" {
		m.connectionsOpen.WithLabelValues().Inc()
	} else {
		m.connections.WithLabelValues(m.bounded("role", fromRole), m.bounded("state", fromState)).Dec()
	}
	if toState != "" {
		m.connections.WithLabelValues(m.bounded("role", toRole), m.bounded("state", toState)).Inc()
	}
}

// PlayerSkipped counts n skips of players ahead to a keyframe.
func (m *Metrics) PlayerSkipped(n uint64) {
	if m != nil {
		m.playerEvents.WithLabelValues("skip").Add(float64(n))
	}
}

// SlowPlayerDisconnected counts a player disconnected for not keeping up.
func (m *Metrics) SlowPlayerDisconnected() {
	if m != nil {
		m.playerEvents.WithLabelValues("slow_disconnect").Inc()
	}
}

// HandshakeFailed counts a failed handshake; proto is "rtmp" or "tls",
// reason one of server's HandshakeReason constants.
func (m *Metrics) HandshakeFailed(proto, reason string) {
	if m != nil {
		m.handshakeFails.WithLabelValues(m.bounded("proto", proto), m.bounded("handshake_reason", reason)).Inc()
	}
}

// CallbackDone counts an event callback request and its duration.
func (m *Metrics) CallbackDone(event, outcome string, took time.Duration) {
	if m == nil {
		return
	}
	event = m.bounded("event", event)
	m.callbacks.WithLabelValues(event, m.bounded("outcome", outcome)).Inc()
	m.callbackLatency.WithLabelValues(event).Observe(took.Seconds())
}

// CallbackStopLost counts a stop event given up, with the reason.
func (m *Metrics) CallbackStopLost(reason string) {
	if m != nil {
		m.stopsLost.WithLabelValues(m.bounded("lost_reason", reason)).Inc()
	}
}

// CertificatesServed shows the reload failure counter, at 0 until a
// reload fails, for a server that serves RTMPS.
func (m *Metrics) CertificatesServed() {
	if m != nil {
		m.certReloadFails.WithLabelValues()
	}
}

// RedisCommandApplied counts a control command applied, with its outcome.
func (m *Metrics) RedisCommandApplied(command, outcome string) {
	if m != nil {
		m.redisCommands.WithLabelValues(m.bounded("command", command), m.bounded("command_outcome", outcome)).Inc()
	}
}

// CertificateReloadFailed counts a failed certificate reload.
func (m *Metrics) CertificateReloadFailed() {
	if m != nil {
		m.certReloadFails.WithLabelValues().Inc()
	}
}

// hubCollector reads the hub at scrape time: server-wide figures, and one
// set of series per live stream, labelled with its channel, that
// disappear when the stream ends.
type hubCollector struct{ src Source }

var (
	descStreams     = prometheus.NewDesc("rtmp_streams", "Channels with a publisher or waiting players.", nil, nil)
	descPublishers  = prometheus.NewDesc("rtmp_publishers", "Live publications.", nil, nil)
	descPlayers     = prometheus.NewDesc("rtmp_players", "Players, playing or waiting for a publisher.", nil, nil)
	descBytesIn     = prometheus.NewDesc("rtmp_received_bytes_total", "Media and data bytes received from publishers.", nil, nil)
	descBytesOut    = prometheus.NewDesc("rtmp_sent_bytes_total", "Bytes written to players.", nil, nil)
	descMessagesIn  = prometheus.NewDesc("rtmp_received_messages_total", "Media and data messages received from publishers.", nil, nil)
	channelLabel    = []string{"channel"}
	descSBytesIn    = prometheus.NewDesc("rtmp_stream_received_bytes_total", "Bytes received for the live stream.", []string{"channel", "track"}, nil)
	descSMessages   = prometheus.NewDesc("rtmp_stream_received_messages_total", "Messages received for the live stream.", channelLabel, nil)
	descSBitrate    = prometheus.NewDesc("rtmp_stream_ingest_bytes_per_second", "Measured ingest rate over the last 5 s.", []string{"channel", "track"}, nil)
	descSFrameRate  = prometheus.NewDesc("rtmp_stream_frames_per_second", "Measured video frame rate over the last 5 s.", channelLabel, nil)
	descSKeyframe   = prometheus.NewDesc("rtmp_stream_keyframe_interval_seconds", "Measured interval between video keyframes.", channelLabel, nil)
	descSFrames     = prometheus.NewDesc("rtmp_stream_video_frames_total", "Video frames received.", channelLabel, nil)
	descSKeyframes  = prometheus.NewDesc("rtmp_stream_keyframes_total", "Video keyframes received.", channelLabel, nil)
	descSAnomalies  = prometheus.NewDesc("rtmp_stream_timestamp_anomalies_total", "Timestamps that went backwards or jumped ahead.", []string{"channel", "kind"}, nil)
	descSDrift      = prometheus.NewDesc("rtmp_stream_av_drift_seconds", "Last video timestamp minus last audio timestamp.", channelLabel, nil)
	descSGOP        = prometheus.NewDesc("rtmp_stream_gop_cache_bytes", "Bytes held by the stream's GOP cache.", channelLabel, nil)
	descSPlayers    = prometheus.NewDesc("rtmp_stream_players", "Players of the live stream.", channelLabel, nil)
	descSStarted    = prometheus.NewDesc("rtmp_stream_start_time_seconds", "When the live stream started, as a Unix timestamp.", channelLabel, nil)
	descSPlayerSent = prometheus.NewDesc("rtmp_stream_player_sent_bytes", "Media bytes sent to the stream's current players.", channelLabel, nil)
)

func (c hubCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStreams, descPublishers, descPlayers, descBytesIn, descBytesOut, descMessagesIn,
		descSBytesIn, descSMessages, descSBitrate, descSFrameRate, descSKeyframe, descSFrames, descSKeyframes,
		descSAnomalies, descSDrift, descSGOP, descSPlayers, descSStarted, descSPlayerSent} {
		ch <- d
	}
}

func (c hubCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge(descStreams, float64(st.Streams))
	gauge(descPublishers, float64(st.Publishers))
	gauge(descPlayers, float64(st.Players))
	counter(descBytesIn, float64(st.BytesIn))
	counter(descBytesOut, float64(st.BytesOut))
	counter(descMessagesIn, float64(st.MessagesIn))
	for _, s := range c.src.StreamTotals() {
		if !s.Published {
			continue
		}
		name := s.Channel
		counter(descSBytesIn, float64(s.VideoBytesIn), name, "video")
		counter(descSBytesIn, float64(s.AudioBytesIn), name, "audio")
		counter(descSBytesIn, float64(s.BytesIn-s.VideoBytesIn-s.AudioBytesIn), name, "data")
		counter(descSMessages, float64(s.MessagesIn), name)
		gauge(descSBitrate, s.VideoBitrate/8, name, "video")
		gauge(descSBitrate, s.AudioBitrate/8, name, "audio")
		gauge(descSFrameRate, s.FrameRate, name)
		gauge(descSKeyframe, s.KeyframeInterval.Seconds(), name)
		counter(descSFrames, float64(s.VideoFrames), name)
		counter(descSKeyframes, float64(s.Keyframes), name)
		counter(descSAnomalies, float64(s.TimestampsBackwards), name, "backwards")
		counter(descSAnomalies, float64(s.TimestampJumps), name, "jump")
		gauge(descSDrift, s.AVDrift.Seconds(), name)
		gauge(descSGOP, float64(s.GOPCacheBytes), name)
		gauge(descSPlayers, float64(s.PlayerCount), name)
		gauge(descSStarted, float64(s.Started.UnixNano())/1e9, name)
		gauge(descSPlayerSent, float64(s.PlayerBytesSent), name)
	}
}
