package admin

import (
	"sync"

	"github.com/rtmp-server/rtmp-server/internal/server"
)

// connPlace is where a connection stands, for the connections gauge.
type connPlace struct{ role, state string }

// observer follows open connections for Observe.
type observer struct {
	mu     sync.Mutex
	places map[uint64]connPlace // guarded by mu: open connections by session
}

// Observe counts a server event (use it as server.Server.Observer):
// publishes and plays accepted or refused (by reason), connections by role
// and state, failed handshakes, player skips and slow-player disconnects.
func (m *Metrics) Observe(ev server.Event) {
	if m == nil {
		return
	}
	switch ev.Kind {
	case server.ConnAccepted:
		m.move(ev.Session, "unknown", "handshake", true)
	case server.HandshakeDone:
		m.move(ev.Session, "", "connecting", false)
	case server.Connected:
		m.move(ev.Session, "", "connected", false)
	case server.PublishAccepted:
		m.PublishAccepted()
		m.move(ev.Session, "publisher", "publishing", false)
	case server.PublishRefused:
		m.PublishRefused(ev.Reason)
	case server.StreamEnded, server.PlayStopped:
		m.move(ev.Session, "", "connected", false)
	case server.PlayAccepted:
		m.PlayAccepted()
		m.move(ev.Session, "player", "playing", false)
	case server.PlayRefused:
		m.PlayRefused(ev.Reason)
	case server.PlayerSkipped:
		m.PlayerSkipped(ev.Skips)
	case server.PlayerDropped:
		m.SlowPlayerDisconnected()
	case server.ConnClosed:
		m.move(ev.Session, "", "", false)
	case server.HandshakeFailed:
		proto := "rtmp"
		if ev.TLS {
			proto = "tls"
		}
		m.HandshakeFailed(proto, ev.Reason)
	}
}

// move puts session id in state (role "" keeps its role; state "" closes
// it). Only a new connection (opens) may be unknown: an event for a
// connection already closed, or a second opening, is ignored.
func (m *Metrics) move(id uint64, role, state string, opens bool) {
	o := &m.conns
	o.mu.Lock()
	old, known := o.places[id]
	if known == opens {
		o.mu.Unlock()
		return
	}
	if role == "" {
		role = old.role
	}
	if state == "" {
		delete(o.places, id)
	} else {
		o.places[id] = connPlace{role, state}
	}
	o.mu.Unlock()
	m.ConnectionMoved(old.role, old.state, role, state)
}
