package server

import (
	"slices"
	"sync"
)

// maxClosedIDs bounds the close-stream stream ids kept per pending publish;
// past it the oldest is forgotten.
const maxClosedIDs = 16

// pendingPublishes tracks publishes between the publish command and going
// live (the wait for a stale publisher and for the start callback), so that
// kill-session and close-stream reach them too: a publish that a command
// names while it waits is refused when its wait ends, instead of going
// live. It is safe for concurrent use.
type pendingPublishes struct {
	mu        sync.Mutex
	byChannel map[string][]*pendingPublish // guarded by mu; no entry is empty
}

// pendingPublish is one publish waiting to go live.
type pendingPublish struct {
	channel string   // immutable
	killed  bool     // guarded by pendingPublishes.mu: kill-session named the channel
	closed  []string // guarded by pendingPublishes.mu: stream ids close-stream named
}

// add registers a publish on channel; the caller must call goLive or
// remove (both may be called) when the wait ends.
func (p *pendingPublishes) add(channel string) *pendingPublish {
	pp := &pendingPublish{channel: channel}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byChannel == nil {
		p.byChannel = make(map[string][]*pendingPublish)
	}
	p.byChannel[channel] = append(p.byChannel[channel], pp)
	return pp
}

// remove forgets pp; it may be called more than once.
func (p *pendingPublishes) remove(pp *pendingPublish) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.removeLocked(pp)
}

func (p *pendingPublishes) removeLocked(pp *pendingPublish) {
	list := p.byChannel[pp.channel]
	for i, q := range list {
		if q == pp {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(p.byChannel, pp.channel)
	} else {
		p.byChannel[pp.channel] = list
	}
}

// killed reports whether kill-session has named pp's channel since add.
func (p *pendingPublishes) killed(pp *pendingPublish) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return pp.killed
}

// goLive ends the wait of pp, approved with streamID: unless a command
// named it meanwhile, it calls publish, with the registry locked so that a
// command either reaches pp here or finds the publication publish made.
// It returns the name of the command that refused pp, or "" when publish
// was called.
func (p *pendingPublishes) goLive(pp *pendingPublish, streamID string, publish func()) (refusedBy string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.removeLocked(pp)
	switch {
	case pp.killed:
		return "kill-session"
	case streamID != "" && slices.Contains(pp.closed, streamID):
		return "close-stream"
	}
	publish()
	return ""
}

// kill marks every pending publish of channel as killed and then runs
// onLive (which ends the live publisher), with the registry locked. It
// returns how many pending publishes were marked.
func (p *pendingPublishes) kill(channel string, onLive func()) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pp := range p.byChannel[channel] {
		pp.killed = true
	}
	onLive()
	return len(p.byChannel[channel])
}

// close records streamID against every pending publish of channel (one
// approved with that stream id is refused) and then runs onLive, with the
// registry locked. It returns how many pending publishes it reached.
func (p *pendingPublishes) close(channel, streamID string, onLive func()) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pp := range p.byChannel[channel] {
		if !slices.Contains(pp.closed, streamID) {
			if len(pp.closed) == maxClosedIDs {
				pp.closed = pp.closed[1:]
			}
			pp.closed = append(pp.closed, streamID)
		}
	}
	onLive()
	return len(p.byChannel[channel])
}
