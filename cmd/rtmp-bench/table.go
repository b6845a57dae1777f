package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
)

// metric is one row of the comparison table.
type metric struct {
	name   string
	digits int
	value  func(*report) (float64, bool)
}

var tableMetrics = []metric{
	{"delivery %", 2, func(r *report) (float64, bool) {
		if r.Players == nil {
			return 0, false
		}
		return r.Players.DeliveryPct, true
	}},
	{"latency p50 ms", 1, func(r *report) (float64, bool) {
		if r.Players == nil {
			return 0, false
		}
		return r.Players.LatencyMs.P50, true
	}},
	{"latency p99 ms", 1, func(r *report) (float64, bool) {
		if r.Players == nil {
			return 0, false
		}
		return r.Players.LatencyMs.P99, true
	}},
	{"stalled closed by server", 0, func(r *report) (float64, bool) {
		if r.Stalled == nil {
			return 0, false
		}
		return float64(r.Stalled.ClosedByServer), true
	}},
	{"publishers sending", 0, func(r *report) (float64, bool) {
		if r.Players != nil || r.Publishers == nil {
			return 0, false
		}
		return float64(r.Publishers.Started), true
	}},
	{"ingest Mbit/s", 0, func(r *report) (float64, bool) {
		if r.Players != nil || r.Publishers == nil {
			return 0, false
		}
		return r.Publishers.Mbps, true
	}},
	{"server CPU s/GB", 2, func(r *report) (float64, bool) {
		if r.Server == nil || r.Server.GB == 0 {
			return 0, false
		}
		return r.Server.CPUPerGB, true
	}},
	{"server CPU % of a core", 0, func(r *report) (float64, bool) {
		if r.Server == nil {
			return 0, false
		}
		return r.Server.CPUPercent, true
	}},
	{"server RSS MB", 1, func(r *report) (float64, bool) {
		if r.Server != nil {
			return r.Server.RSSEndMB, true
		}
		if r.Idle != nil && r.Idle.RSSAfterMB > 0 {
			return r.Idle.RSSAfterMB, true
		}
		return 0, false
	}},
	{"server KB per idle player", 1, func(r *report) (float64, bool) {
		if r.Idle == nil || r.Idle.RSSAfterMB == 0 {
			return 0, false
		}
		return r.Idle.KBPerPlayer, true
	}},
	{"idle players connected", 0, func(r *report) (float64, bool) {
		if r.Idle == nil {
			return 0, false
		}
		return float64(r.Idle.Connected), true
	}},
	{"tool CPU % of a core", 0, func(r *report) (float64, bool) {
		if r.WindowSeconds == 0 {
			return 0, false
		}
		return r.Tool.CPUPercent, true
	}},
	{"machine CPU pressure %", 0, func(r *report) (float64, bool) {
		if r.WindowSeconds == 0 {
			return 0, false
		}
		return r.Machine.CPUPressurePct, true
	}},
}

// printTable reads -json reports and prints, for every scenario, the
// metrics of server a beside those of server b and their ratio a/b.
func printTable(w io.Writer, files []string, a, b string) error {
	var order []string
	runs := make(map[string]map[string]*report)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		rep := &report{}
		if err := json.Unmarshal(data, rep); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if runs[rep.Scenario] == nil {
			runs[rep.Scenario] = make(map[string]*report)
			order = append(order, rep.Scenario)
		}
		runs[rep.Scenario][rep.Label] = rep
	}
	fmt.Fprintf(w, "| scenario | metric | %s | %s | %s / %s |\n", a, b, a, b)
	fmt.Fprintln(w, "|---|---|--:|--:|--:|")
	for _, sc := range order {
		ra, rb := runs[sc][a], runs[sc][b]
		for _, m := range tableMetrics {
			va, oka := value(m, ra)
			vb, okb := value(m, rb)
			if !oka && !okb {
				continue
			}
			ratio := "–"
			if oka && okb && vb != 0 {
				ratio = strconv.FormatFloat(va/vb, 'f', 2, 64)
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", sc, m.name, cell(va, oka, m.digits), cell(vb, okb, m.digits), ratio)
		}
	}
	return nil
}

func value(m metric, r *report) (float64, bool) {
	if r == nil {
		return 0, false
	}
	return m.value(r)
}

func cell(v float64, ok bool, digits int) string {
	if !ok {
		return "–"
	}
	return strconv.FormatFloat(v, 'f', digits, 64)
}
