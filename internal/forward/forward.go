// Package forward pushes publications to other RTMP servers (origins,
// transcoders, platforms). A forward is a player of the stream from the
// hub's view: it has its own bounded queue, gets the same once-encoded
// bytes as every player, starts at the metadata, codec headers and latest
// keyframe, and skips to the next keyframe when its target is slow, so a
// slow or dead target never slows the publisher or the other players. Its
// writer speaks to the target as a publishing client (package client),
// over RTMP or RTMPS, and reconnects with backoff for as long as the
// publish lasts.
package forward

import (
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/client"
	"github.com/rtmp-server/rtmp-server/internal/hub"
	"github.com/rtmp-server/rtmp-server/internal/logging"
)

// Defaults of a Manager's timing.
const (
	// DefaultDialTimeout bounds the TCP and TLS connect, the RTMP handshake
	// and the publish exchange with a target.
	DefaultDialTimeout = 10 * time.Second
	// DefaultWriteTimeout bounds one write to a target; a target that
	// takes nothing for this long is reconnected.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultFinishTimeout bounds the last flush and the clean end
	// (FCUnpublish, deleteStream) when the publish ends.
	DefaultFinishTimeout = 2 * time.Second
	// MinBackoff and MaxBackoff bound the wait before a reconnect: it
	// starts at MinBackoff and doubles up to MaxBackoff, jittered by
	// BackoffJitter either way.
	MinBackoff    = time.Second
	MaxBackoff    = 30 * time.Second
	BackoffJitter = 0.2
	// StableAfter is how long a connection must have lasted for the
	// backoff to start again from MinBackoff when it fails: a target that
	// accepts and drops each publish at once is retried less and less often.
	StableAfter = 10 * time.Second
)

// Config is what a reload may change; it applies to publishes from then on.
type Config struct {
	// Templates are the targets of every publish (FORWARD_URLS).
	Templates []Template
	// Insecure turns off certificate verification of rtmps targets
	// (FORWARD_TLS_INSECURE).
	Insecure bool
}

// Manager runs the forwards of a server's publications. Its exported
// fields are set before the first Forward and not changed afterwards.
type Manager struct {
	DialTimeout   time.Duration
	WriteTimeout  time.Duration
	FinishTimeout time.Duration
	MinBackoff    time.Duration
	MaxBackoff    time.Duration

	hub *hub.Hub
	log *slog.Logger
	cfg atomic.Pointer[Config]

	mu     sync.Mutex
	groups map[string]*group // by channel; guarded by mu
	closed bool              // guarded by mu
	wg     sync.WaitGroup    // one count per running target

	totals struct{ bytes, reconnects, skips atomic.Uint64 } // of every forward, ended ones too
}

// Totals are a Manager's counters over all its forwards, ended ones too.
type Totals struct {
	Bytes      uint64 // written to targets
	Reconnects uint64
	Skips      uint64 // skips to a keyframe because a target was too slow, counted as each connection ends
}

// Totals returns the counters of every forward so far.
func (m *Manager) Totals() Totals {
	return Totals{Bytes: m.totals.bytes.Load(), Reconnects: m.totals.reconnects.Load(), Skips: m.totals.skips.Load()}
}

// group is the forwards of one channel's publication. A reconnecting
// encoder that takes over its stream (hub hand-over) keeps the group, and
// so the targets' connections.
type group struct {
	pub     *hub.Publication   // guarded by Manager.mu
	targets map[string]*target // by URL; guarded by Manager.mu
}

// New returns a Manager forwarding publications of h, logging to log.
func New(h *hub.Hub, log *slog.Logger, cfg Config) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{
		DialTimeout:   DefaultDialTimeout,
		WriteTimeout:  DefaultWriteTimeout,
		FinishTimeout: DefaultFinishTimeout,
		MinBackoff:    MinBackoff,
		MaxBackoff:    MaxBackoff,
		hub:           h,
		log:           log,
		groups:        make(map[string]*group),
	}
	m.SetConfig(cfg)
	return m
}

// SetConfig replaces the configuration for the publishes that start from now on.
func (m *Manager) SetConfig(cfg Config) { m.cfg.Store(&cfg) }

// Forward starts forwarding pub to the configured targets and to extra
// (full URLs from the start callback: an invalid one is logged and
// skipped). replaced is the publication pub took over (a reconnecting
// encoder), or nil: its forwards are carried on, keeping the connections
// to targets that pub forwards to as well. Forward does not block.
func (m *Manager) Forward(pub, replaced *hub.Publication, extra []string) {
	cfg := m.cfg.Load()
	log := m.log.With("session", pub.SessionID(), "channel", pub.Channel)
	urls := make(map[string]client.URL)
	var order []string
	add := func(raw string) {
		if _, dup := urls[raw]; dup {
			return
		}
		u, err := client.ParseURL(raw)
		if err != nil {
			log.Warn("forward: target skipped", "forward", maskTemplate(raw), "err", err)
			return
		}
		urls[raw] = u
		order = append(order, raw)
	}
	for _, t := range cfg.Templates {
		add(t.Expand(pub.Channel, pub.Key, pub.StreamID))
	}
	for i, raw := range extra {
		if i == MaxExtraTargets {
			log.Warn("forward: callback targets skipped", "skipped", len(extra)-i, "max", MaxExtraTargets)
			break
		}
		if len(raw) > MaxURLLength {
			log.Warn("forward: target skipped", "forward", maskTemplate(raw[:MaxURLLength]), "err", "URL too long")
			continue
		}
		add(raw)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	old := m.groups[pub.Channel]
	g := &group{pub: pub, targets: make(map[string]*target)}
	if old != nil {
		for raw, t := range old.targets {
			if _, keep := urls[raw]; keep && old.pub == replaced && replaced != nil {
				t.setPub(pub)
				g.targets[raw] = t
				continue
			}
			t.stop()
		}
	}
	for _, raw := range order {
		if g.targets[raw] != nil {
			continue
		}
		t := newTarget(m, pub, urls[raw], cfg.Insecure, log)
		g.targets[raw] = t
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			t.run()
		}()
	}
	if len(g.targets) == 0 {
		delete(m.groups, pub.Channel)
		return
	}
	m.groups[pub.Channel] = g
}

// Ended tells the manager that pub's publisher left. When handedOver (a
// reconnecting encoder took the stream over) the forwards wait for that
// publication's Forward; otherwise they end their targets' streams
// cleanly. Ended does not block.
func (m *Manager) Ended(pub *hub.Publication, handedOver bool) {
	if handedOver {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.groups[pub.Channel]
	// A group of a publication that ended without its successor's Forward
	// (the successor failed first) is ended too.
	if g == nil || (g.pub != pub && !g.pub.Ended()) {
		return
	}
	for _, t := range g.targets {
		t.stop()
	}
	delete(m.groups, pub.Channel)
}

// Close ends every forward and waits for them (each within the write and
// finish timeouts). Later Forward calls do nothing.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	for ch, g := range m.groups {
		for _, t := range g.targets {
			t.stop()
		}
		delete(m.groups, ch)
	}
	m.mu.Unlock()
	m.wg.Wait()
}

// Status is one forward as monitoring shows it.
type Status struct {
	Channel    string    `json:"channel"`
	Target     string    `json:"target"` // the URL, stream name masked
	State      State     `json:"state"`
	Since      time.Time `json:"since"`
	Bytes      uint64    `json:"bytes"`
	Reconnects uint64    `json:"reconnects"`
	Skips      uint64    `json:"skips"`
	LastError  string    `json:"last_error,omitempty"` // why the last connection failed (bounded, key masked); empty once live
}

// Forwards returns the state of every running forward.
func (m *Manager) Forwards() []Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Status
	for ch, g := range m.groups {
		for _, t := range g.targets {
			st := t.status()
			st.Channel = ch
			out = append(out, st)
		}
	}
	return out
}

// maskKey returns err with the stream key masked wherever it appears: a
// target's error status may quote the stream name it refused.
func maskKey(err error, key string) error {
	text := err.Error()
	out := text
	if key != "" {
		out = strings.ReplaceAll(out, key, masked)
		if esc := url.PathEscape(key); esc != key {
			out = strings.ReplaceAll(out, esc, masked)
		}
	}
	if out == text {
		return err
	}
	return errors.New(out)
}

// clipErr bounds an error's text for a log line or a Status: it may quote
// what the target sent.
func clipErr(err error) string { return logging.ClipN(err.Error(), maxErrorText) }

const maxErrorText = 256
