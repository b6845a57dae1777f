package admin

import (
	"cmp"
	"slices"
	"time"
)

// Forward is one forward of a live stream to another server (a target of
// FORWARD_URLS or of the start callback's forward-url headers). The API
// lists forwards with their stream, under forwards, and not among its
// players, though the hub counts them as players.
type Forward struct {
	// Channel is the forwarded stream's; the API shows it by nesting.
	Channel string `json:"-"`
	// Target is the target URL with its stream name masked (***), and the
	// stream key masked wherever else it appears, as in the log lines.
	Target string `json:"target"`
	// State is connecting, live or retrying.
	State string `json:"state"`
	// Since is when the forward entered State.
	Since        time.Time `json:"since"`
	StateSeconds float64   `json:"state_seconds"`
	// BytesSent counts the bytes written to the target, over all its
	// connections.
	BytesSent uint64 `json:"bytes_sent"`
	// Reconnects counts the connections made again after a failure.
	Reconnects uint64 `json:"reconnects"`
	// QueueSkips counts the times the target was too slow and the forward
	// skipped to the next keyframe.
	QueueSkips uint64 `json:"queue_skips"`
	// LastError is why the last connection failed (bounded, the stream key
	// masked), kept while it connects again; empty once live.
	LastError string `json:"last_error,omitempty"`
}

// forwardsByChannel groups the forwards src reports by channel, each
// channel's sorted by target.
func forwardsByChannel(src func() []Forward, now time.Time) map[string][]Forward {
	if src == nil {
		return nil
	}
	out := make(map[string][]Forward)
	for _, f := range src() {
		if !f.Since.IsZero() {
			f.Since = f.Since.UTC()
			f.StateSeconds = round(now.Sub(f.Since).Seconds(), 1)
		}
		out[f.Channel] = append(out[f.Channel], f)
	}
	for _, fs := range out {
		slices.SortFunc(fs, func(a, b Forward) int { return cmp.Compare(a.Target, b.Target) })
	}
	return out
}

// isForward reports whether a hub player is not a connection but one of
// the server's own forwards: they join the hub as session 0, and
// connections' sessions count from 1.
func isForward(sessionID uint64) bool { return sessionID == 0 }
