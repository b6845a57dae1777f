package main

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strings"
	"time"
)

// report is the result of one run; it is printed as text or JSON.
type report struct {
	Label    string   `json:"label,omitempty"`
	Scenario string   `json:"scenario,omitempty"`
	URL      string   `json:"url"`
	Settings settings `json:"settings"`
	// WindowSeconds is the length of the measurement window.
	WindowSeconds float64           `json:"window_s"`
	Publishers    *publishersReport `json:"publishers,omitempty"`
	Players       *playersReport    `json:"players,omitempty"`
	Stalled       *stalledReport    `json:"stalled,omitempty"`
	Idle          *idleReport       `json:"idle,omitempty"`
	Server        *serverReport     `json:"server,omitempty"`
	Tool          toolReport        `json:"tool"`
	Machine       machineReport     `json:"machine"`
	Warnings      []string          `json:"warnings,omitempty"`

	srvStart, srvEnd *procSample
	deliveredBytes   uint64 // payload read by players inside the window
}

type settings struct {
	Players     int     `json:"players"`
	Stalled     int     `json:"stalled"`
	Idle        int     `json:"idle"`
	Publishers  int     `json:"publishers"`
	DurationS   float64 `json:"duration_s"`
	BitrateKbit int     `json:"bitrate_kbit"`
	FPS         float64 `json:"fps"`
	GOPS        float64 `json:"gop_s"`
	ChunkSize   uint32  `json:"chunk_size"`
	Ramp        float64 `json:"ramp_per_s"`
	Vary        string  `json:"vary"`
}

type publishersReport struct {
	Count   int `json:"count"`
	Started int `json:"started"`
	// SentMsgs and SentBytes count the frames sent inside the window, per
	// publisher summed over all of them.
	SentMsgs  uint64 `json:"sent_msgs"`
	SentBytes uint64 `json:"sent_bytes"`
	// Mbps is the payload rate sent, all publishers together.
	Mbps float64 `json:"mbps"`
	// MaxLagMs is how late, at worst, a frame left the tool: large values
	// mean the tool or the server's reading fell behind real time.
	MaxLagMs float64        `json:"max_lag_ms"`
	Errors   map[string]int `json:"errors,omitempty"`
}

type playersReport struct {
	Count     int `json:"count"`
	Connected int `json:"connected"`
	// Failed players never got Play answered; Disconnected ones lost the
	// connection before the end.
	Failed       int `json:"failed"`
	Disconnected int `json:"disconnected"`
	// DeliveryPct is frames read over frames sent, all players together
	// (failed players count as having read nothing).
	DeliveryPct       float64        `json:"delivery_pct"`
	DeliveryMinPct    float64        `json:"delivery_min_pct"`
	DeliveryMedianPct float64        `json:"delivery_median_pct"`
	Complete          int            `json:"complete"` // players that read every frame
	Gaps              uint64         `json:"gaps"`
	Reordered         uint64         `json:"reordered"`
	LatencyMs         percentiles    `json:"latency_ms"`
	JoinMs            percentiles    `json:"join_ms"`
	Mbps              float64        `json:"mbps"` // payload delivered, all players together
	MsgsPerSec        float64        `json:"msgs_per_s"`
	Errors            map[string]int `json:"errors,omitempty"`
	PerPlayer         []playerReport `json:"per_player"`
}

type percentiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

type playerReport struct {
	ID          int     `json:"id"`
	Received    uint64  `json:"received"`
	DeliveryPct float64 `json:"delivery_pct"`
	Gaps        uint64  `json:"gaps"`
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
	MaxMs       float64 `json:"max_ms"`
	JoinMs      float64 `json:"join_ms"`
	Error       string  `json:"error,omitempty"`
}

type stalledReport struct {
	Count int `json:"count"`
	// ClosedByServer were found closed at the end; Open still were.
	ClosedByServer int `json:"closed_by_server"`
	Open           int `json:"open"`
	Failed         int `json:"failed"`
}

type idleReport struct {
	Count       int            `json:"count"`
	Connected   int            `json:"connected"`
	RSSBeforeMB float64        `json:"rss_before_mb,omitempty"`
	RSSAfterMB  float64        `json:"rss_after_mb,omitempty"`
	KBPerPlayer float64        `json:"kb_per_player,omitempty"`
	Errors      map[string]int `json:"errors,omitempty"`
}

type serverReport struct {
	PID int `json:"pid"`
	// CPUSeconds is user+system time inside the window; CPUPercent is that
	// over the window, 100 being one core.
	CPUSeconds float64 `json:"cpu_s"`
	CPUPercent float64 `json:"cpu_pct"`
	// GB is payload delivered to players or, without players, ingested.
	GB         float64 `json:"gb"`
	CPUPerGB   float64 `json:"cpu_s_per_gb"`
	RSSStartMB float64 `json:"rss_start_mb"`
	RSSEndMB   float64 `json:"rss_end_mb"`
	HWMMB      float64 `json:"rss_peak_mb"`
	Threads    int64   `json:"threads"`
}

// machineReport tells how busy the whole machine was during the window:
// when other work competes for the cores, latency and delivery suffer for
// reasons that are neither the server's nor the tool's.
type machineReport struct {
	CPUs int `json:"cpus"`
	// BusyPct is the share of all cores' time spent busy (100 = every core).
	BusyPct float64 `json:"busy_pct"`
	// CPUPressurePct is the share of the window in which some runnable task
	// waited for a core (/proc/pressure/cpu "some").
	CPUPressurePct float64 `json:"cpu_pressure_pct"`
}

type toolReport struct {
	CPUSeconds float64 `json:"cpu_s"`
	CPUPercent float64 `json:"cpu_pct"`
	GOMAXPROCS int     `json:"gomaxprocs"`
}

func newReport(o options) *report {
	return &report{
		Label: o.label, Scenario: o.scenario, URL: o.url,
		Settings: settings{
			Players: o.players, Stalled: o.stalled, Idle: o.idle, Publishers: o.publishers,
			DurationS: o.duration.Seconds(), BitrateKbit: o.bitrate / 1000, FPS: o.fps,
			GOPS: o.gop.Seconds(), ChunkSize: o.chunkSize, Ramp: o.ramp, Vary: o.vary,
		},
		Tool: toolReport{GOMAXPROCS: runtime.GOMAXPROCS(0)},
	}
}

func mb(kb int64) float64 { return float64(kb) / 1024 }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func countErr(m map[string]int, err error) map[string]int {
	if err == nil {
		return m
	}
	if m == nil {
		m = make(map[string]int)
	}
	m[errKind(err)]++
	return m
}

func (rep *report) addIdle(ps []*player, before, after *procSample) {
	ir := &idleReport{Count: len(ps)}
	for _, p := range ps {
		if p.conn.Load() != nil {
			ir.Connected++
		}
		ir.Errors = countErr(ir.Errors, p.setupErr)
	}
	if before != nil && after != nil {
		ir.RSSBeforeMB, ir.RSSAfterMB = mb(before.rssKB), mb(after.rssKB)
		if ir.Connected > 0 {
			ir.KBPerPlayer = float64(after.rssKB-before.rssKB) / float64(ir.Connected)
		}
	}
	rep.Idle = ir
}

func (rep *report) setWindow(d time.Duration, srvStart, srvEnd *procSample, toolCPU time.Duration, m0, m1 machineSample) {
	rep.WindowSeconds = d.Seconds()
	rep.Machine.CPUs = runtime.NumCPU()
	if total := m1.total - m0.total; total > 0 {
		rep.Machine.BusyPct = 100 * float64(m1.busy-m0.busy) / float64(total)
	}
	rep.Machine.CPUPressurePct = 100 * float64(m1.cpuStall-m0.cpuStall) / float64(d)
	rep.srvStart, rep.srvEnd = srvStart, srvEnd
	rep.Tool.CPUSeconds = toolCPU.Seconds()
	rep.Tool.CPUPercent = 100 * toolCPU.Seconds() / d.Seconds()
}

func (rep *report) addStalledState(state string) {
	if rep.Stalled == nil {
		rep.Stalled = &stalledReport{}
	}
	rep.Stalled.Count++
	switch state {
	case "closed":
		rep.Stalled.ClosedByServer++
	case "open":
		rep.Stalled.Open++
	default:
		rep.Stalled.Failed++
	}
}

func (rep *report) addPublishers(pubs []*publisher) {
	if len(pubs) == 0 {
		return
	}
	pr := &publishersReport{Count: len(pubs)}
	var lag time.Duration
	for _, p := range pubs {
		if p.sentMsgs > 0 {
			pr.Started++
		}
		pr.SentMsgs += p.sentMsgs
		pr.SentBytes += p.sentBytes
		lag = max(lag, p.maxLag)
		pr.Errors = countErr(pr.Errors, p.startErr)
		pr.Errors = countErr(pr.Errors, p.err)
	}
	pr.MaxLagMs = ms(lag)
	if rep.WindowSeconds > 0 {
		pr.Mbps = float64(pr.SentBytes) * 8 / rep.WindowSeconds / 1e6
	}
	rep.Publishers = pr
}

func (rep *report) addPlayers(readers, stalls []*player, pub *publisher) {
	pr := &playersReport{Count: len(readers)}
	var all, join histogram
	var received, bytes uint64
	var deliveries []float64
	sent := pub.sentMsgs
	for _, p := range readers {
		if p.conn.Load() != nil {
			pr.Connected++
			if p.err != nil {
				pr.Disconnected++
			}
		} else {
			pr.Failed++
		}
		pr.Errors = countErr(pr.Errors, p.failure())
		d := 0.0
		if sent > 0 {
			d = 100 * float64(p.received) / float64(sent)
		}
		deliveries = append(deliveries, d)
		if p.received == sent {
			pr.Complete++
		}
		received += p.received
		bytes += p.bytes
		pr.Gaps += p.gaps
		pr.Reordered += p.reordered
		all.merge(&p.latency)
		if p.join > 0 {
			join.record(p.join)
		}
		pr.PerPlayer = append(pr.PerPlayer, playerReport{
			ID: p.id, Received: p.received, DeliveryPct: d, Gaps: p.gaps,
			P50Ms: ms(p.latency.quantile(0.5)), P99Ms: ms(p.latency.quantile(0.99)), MaxMs: ms(p.latency.max),
			JoinMs: ms(p.join), Error: errKind(p.failure()),
		})
	}
	if len(readers) > 0 && sent > 0 {
		pr.DeliveryPct = 100 * float64(received) / float64(sent) / float64(len(readers))
		slices.Sort(deliveries)
		pr.DeliveryMinPct = deliveries[0]
		pr.DeliveryMedianPct = deliveries[len(deliveries)/2]
	}
	pr.LatencyMs = percentilesOf(&all)
	pr.JoinMs = percentilesOf(&join)
	if rep.WindowSeconds > 0 {
		pr.Mbps = float64(bytes) * 8 / rep.WindowSeconds / 1e6
		pr.MsgsPerSec = float64(received) / rep.WindowSeconds
	}
	if len(readers) > 0 {
		rep.Players = pr
	}
	for _, p := range stalls {
		if p.conn.Load() == nil && rep.Stalled == nil {
			rep.addStalledState("failed")
		}
	}
	rep.deliveredBytes = bytes
}

func percentilesOf(h *histogram) percentiles {
	return percentiles{
		P50: ms(h.quantile(0.5)), P90: ms(h.quantile(0.9)),
		P99: ms(h.quantile(0.99)), Max: ms(h.max),
	}
}

// finish fills in the server's figures.
func (rep *report) finish(pid int) {
	if pid == 0 || rep.srvStart == nil || rep.srvEnd == nil {
		return
	}
	s, e := rep.srvStart, rep.srvEnd
	sr := &serverReport{
		PID:        pid,
		CPUSeconds: (e.cpu - s.cpu).Seconds(),
		RSSStartMB: mb(s.rssKB), RSSEndMB: mb(e.rssKB), HWMMB: mb(e.hwmKB),
		Threads: e.threads,
	}
	if rep.WindowSeconds > 0 {
		sr.CPUPercent = 100 * sr.CPUSeconds / rep.WindowSeconds
	}
	bytes := rep.deliveredBytes
	if rep.Players == nil && rep.Publishers != nil {
		bytes = rep.Publishers.SentBytes
	}
	sr.GB = float64(bytes) / 1e9
	if bytes > 0 {
		sr.CPUPerGB = sr.CPUSeconds / sr.GB
	}
	rep.Server = sr
}

// writeText prints the human-readable summary.
func (rep *report) writeText(w io.Writer) {
	s := rep.Settings
	fmt.Fprintf(w, "rtmp-bench %s", rep.URL)
	if rep.Label != "" || rep.Scenario != "" {
		fmt.Fprintf(w, "  [%s %s]", rep.Label, rep.Scenario)
	}
	fmt.Fprintf(w, "\n  %d players, %d stalled, %d idle, %d publishers; %.0f kbit/s, %.0f fps, GOP %.1f s, chunk %d; window %.1f s\n",
		s.Players, s.Stalled, s.Idle, s.Publishers, float64(s.BitrateKbit), s.FPS, s.GOPS, s.ChunkSize, rep.WindowSeconds)
	if p := rep.Publishers; p != nil {
		fmt.Fprintf(w, "publishers  %d/%d sending, %d frames, %.1f Mbit/s sent, worst send lag %.1f ms%s\n",
			p.Started, p.Count, p.SentMsgs, p.Mbps, p.MaxLagMs, errText(p.Errors))
	}
	if p := rep.Players; p != nil {
		fmt.Fprintf(w, "players     %d connected, %d failed, %d disconnected%s\n", p.Connected, p.Failed, p.Disconnected, errText(p.Errors))
		fmt.Fprintf(w, "delivery    %.2f %% overall (min %.2f %%, median %.2f %%), %d/%d complete, %d gaps, %d reordered\n",
			p.DeliveryPct, p.DeliveryMinPct, p.DeliveryMedianPct, p.Complete, p.Count, p.Gaps, p.Reordered)
		fmt.Fprintf(w, "latency     p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms\n", p.LatencyMs.P50, p.LatencyMs.P90, p.LatencyMs.P99, p.LatencyMs.Max)
		fmt.Fprintf(w, "join        p50 %.0f ms  max %.0f ms (dial to first frame)\n", p.JoinMs.P50, p.JoinMs.Max)
		fmt.Fprintf(w, "throughput  %.1f Mbit/s delivered, %.0f frames/s\n", p.Mbps, p.MsgsPerSec)
		if worst := worstPlayers(p.PerPlayer, 5); len(worst) > 0 {
			fmt.Fprintf(w, "worst       ")
			for _, q := range worst {
				fmt.Fprintf(w, "#%d %.1f%% p99 %.0fms", q.ID, q.DeliveryPct, q.P99Ms)
				if q.Error != "" {
					fmt.Fprintf(w, " (%.60s)", q.Error)
				}
				fmt.Fprint(w, "  ")
			}
			fmt.Fprintln(w)
		}
	}
	if st := rep.Stalled; st != nil {
		fmt.Fprintf(w, "stalled     %d: %d closed by the server, %d still open, %d failed to play\n", st.Count, st.ClosedByServer, st.Open, st.Failed)
	}
	if ir := rep.Idle; ir != nil {
		fmt.Fprintf(w, "idle        %d/%d connected%s", ir.Connected, ir.Count, errText(ir.Errors))
		if ir.RSSAfterMB > 0 {
			fmt.Fprintf(w, "; server RSS %.1f -> %.1f MB, %.1f KB per idle player", ir.RSSBeforeMB, ir.RSSAfterMB, ir.KBPerPlayer)
		}
		fmt.Fprintln(w)
	}
	if sr := rep.Server; sr != nil {
		what := "delivered"
		if rep.Players == nil {
			what = "ingested"
		}
		fmt.Fprintf(w, "server      pid %d: CPU %.2f s (%.0f %% of a core), %.2f CPU s/GB %s (%.2f GB); RSS %.1f -> %.1f MB, peak %.1f MB; %d threads\n",
			sr.PID, sr.CPUSeconds, sr.CPUPercent, sr.CPUPerGB, what, sr.GB, sr.RSSStartMB, sr.RSSEndMB, sr.HWMMB, sr.Threads)
	}
	fmt.Fprintf(w, "tool        CPU %.2f s (%.0f %% of a core, GOMAXPROCS %d)\n", rep.Tool.CPUSeconds, rep.Tool.CPUPercent, rep.Tool.GOMAXPROCS)
	if rep.WindowSeconds > 0 {
		fmt.Fprintf(w, "machine     %d CPUs %.0f %% busy; tasks waited for a CPU %.0f %% of the time\n", rep.Machine.CPUs, rep.Machine.BusyPct, rep.Machine.CPUPressurePct)
	}
	for _, warn := range rep.Warnings {
		fmt.Fprintf(w, "warning     %s\n", warn)
	}
}

func errText(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("; errors:")
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, " %dx %s;", m[k], k)
	}
	return strings.TrimSuffix(b.String(), ";")
}

// worstPlayers returns up to n players that lost frames or were cut off,
// worst delivery first.
func worstPlayers(ps []playerReport, n int) []playerReport {
	var bad []playerReport
	for _, p := range ps {
		if p.DeliveryPct < 100 || p.Error != "" {
			bad = append(bad, p)
		}
	}
	slices.SortFunc(bad, func(a, b playerReport) int { return cmp.Compare(a.DeliveryPct, b.DeliveryPct) })
	return bad[:min(n, len(bad))]
}
