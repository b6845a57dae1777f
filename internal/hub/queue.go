package hub

import (
	"errors"
	"sync"

	"github.com/rtmp-server/rtmp-server/internal/chunk"
)

// Bounds of a player's queue.
const (
	// MaxQueueBytes bounds the media bytes queued for one player. Packets are
	// shared, so this bounds latency more than memory.
	MaxQueueBytes = 16 << 20
	// MaxQueuePackets bounds the media packets queued for one player.
	MaxQueuePackets = 4096
	// MaxQueueControl bounds control messages waiting for a player that does
	// not read; beyond it the connection is given up.
	MaxQueueControl = 1024
)

// ErrQueueFull is returned when control messages overflow a queue: the peer
// is not reading and should be disconnected.
var ErrQueueFull = errors.New("hub: queue full")

// Item is one entry of a Queue: a shared media packet or a control message
// that the writer encodes with the connection's current chunk size.
type Item struct {
	Packet  *Packet
	Control *chunk.Message
}

// Queue is the bounded outgoing queue of one connection. Producers (the
// stream's fan-out, the connection's read loop) never block on it; one
// writer goroutine drains it.
//
// A player that falls behind loses its queued media and skips to the next
// keyframe: decoders can restart there.
type Queue struct {
	mu           sync.Mutex
	items        []Item // guarded by mu
	mediaBytes   int    // guarded by mu
	mediaCount   int    // guarded by mu
	controlCount int    // guarded by mu
	waitKeyframe bool   // guarded by mu; dropping media until a keyframe
	closed       bool   // guarded by mu
	drops        uint64 // guarded by mu; skips to keyframe so far
	ready        chan struct{}
}

// NewQueue returns an empty queue.
func NewQueue() *Queue {
	return &Queue{ready: make(chan struct{}, 1)}
}

// Ready is signalled when items may be pending.
func (q *Queue) Ready() <-chan struct{} { return q.ready }

func (q *Queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// PushControl queues a control message. It fails with ErrQueueFull when the
// peer has let too many pile up.
func (q *Queue) PushControl(m *chunk.Message) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil
	}
	if q.controlCount >= MaxQueueControl {
		return ErrQueueFull
	}
	q.items = append(q.items, Item{Control: m})
	q.controlCount++
	q.signal()
	return nil
}

// PushMedia queues p unless the player is skipping to a keyframe. When the
// bounds are exceeded, queued media is dropped and the player waits for the
// next keyframe. hasVideo tells whether the stream has video, so that an
// audio-only stream resumes on any audio packet. It reports whether p was
// queued.
func (q *Queue) PushMedia(p *Packet, hasVideo bool) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	essential := p.essential()
	if q.waitKeyframe && !essential {
		if !p.resumes(hasVideo) {
			return false
		}
		q.waitKeyframe = false
	}
	if !essential && (q.mediaBytes+p.Size() > MaxQueueBytes || q.mediaCount+1 > MaxQueuePackets) {
		q.dropMediaLocked()
		if !p.resumes(hasVideo) {
			q.waitKeyframe = true
			return false
		}
	}
	q.items = append(q.items, Item{Packet: p})
	q.mediaBytes += p.Size()
	q.mediaCount++
	q.signal()
	return true
}

// dropMediaLocked removes queued media that is not essential, keeping
// control messages and codec headers in order.
func (q *Queue) dropMediaLocked() {
	kept := q.items[:0]
	for _, it := range q.items {
		if it.Packet != nil && !it.Packet.essential() {
			q.mediaBytes -= it.Packet.Size()
			q.mediaCount--
			continue
		}
		kept = append(kept, it)
	}
	clear(q.items[len(kept):])
	q.items = kept
	q.drops++
}

// SkipToKeyframe drops queued media and makes the player wait for the next
// keyframe (used when a player resumes from pause).
func (q *Queue) SkipToKeyframe() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.dropMediaLocked()
	q.waitKeyframe = true
}

// Drain appends the pending items to dst, empties the queue and returns dst.
func (q *Queue) Drain(dst []Item) []Item {
	q.mu.Lock()
	defer q.mu.Unlock()
	dst = append(dst, q.items...)
	clear(q.items)
	q.items = q.items[:0]
	q.mediaBytes, q.mediaCount, q.controlCount = 0, 0, 0
	return dst
}

// Close drops everything queued; later pushes are ignored.
func (q *Queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	clear(q.items)
	q.items = nil
	q.mediaBytes, q.mediaCount, q.controlCount = 0, 0, 0
	q.signal()
}

// Drops reports how many times the player was skipped ahead to a keyframe.
func (q *Queue) Drops() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.drops
}

// Len reports the number of pending items.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
