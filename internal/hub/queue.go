package hub

import (
	"errors"
	"sync"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/chunk"
)

// Bounds of a player's queue.
const (
	// MaxQueueBytes bounds the media bytes queued for one player. Packets are
	// shared, so this bounds latency more than memory.
	MaxQueueBytes = 16 << 20
	// MaxQueuePackets bounds the media packets queued for one player.
	MaxQueuePackets = 4096
	// MaxQueueDelay bounds how long media may wait in a player's queue: a
	// player further behind skips to the next keyframe instead of lagging.
	MaxQueueDelay = 3 * time.Second
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
	// Offset is how much of Packet's wire form was already written (by a
	// direct write that the socket took only part of): the writer sends
	// the rest, and the item is never dropped, since the peer holds the
	// start of a chunk.
	Offset int
}

// DirectWriter writes the wire forms of pkts, in order, or a first part of
// them, to a peer without blocking, and reports how many bytes it wrote: 0
// when the peer's socket is full or a direct write is not possible (the
// packets are then queued for the connection's writer). It must not block
// and must not keep pkts.
type DirectWriter func(pkts []*Packet) int

// Queue is the bounded outgoing queue of one connection. Producers (the
// stream's fan-out, the connection's read loop, the server's pinger) never
// block on it. It has at most one consumer at a time, started through the
// wake function when items arrive and none is running, so an idle
// connection has no writer goroutine. A direct write (NewDirectQueue)
// counts as the consumer while it runs.
//
// A player that falls behind loses its queued media and skips to the next
// keyframe: decoders can restart there.
type Queue struct {
	wake   func()       // guarded by mu; starts a consumer; nil after Finish
	direct DirectWriter // immutable; nil when every packet goes through the queue

	mu           sync.Mutex
	idle         sync.Cond // signalled when the consumer stops; uses mu
	items        []Item    // guarded by mu
	mediaBytes   int       // guarded by mu
	mediaCount   int       // guarded by mu
	oldestMedia  time.Time // guarded by mu; when the oldest queued media was queued
	controlCount int       // guarded by mu
	waitKeyframe bool      // guarded by mu; dropping media until a keyframe
	active       bool      // guarded by mu; a consumer is running
	closed       bool      // guarded by mu
	drops        uint64    // guarded by mu; skips to keyframe so far
	overflows    uint64    // guarded by mu; of drops, those because the player fell behind
	taken        uint64    // guarded by mu; media bytes written directly or taken by the consumer
}

// NewQueue returns an empty queue. wake, if not nil, is called (with no
// lock held by the queue, but possibly under the caller's locks, so it must
// not block: typically `go writer()`) when items arrive and no consumer is
// active; the consumer then calls Next until it returns nil. With a nil
// wake the owner polls with Drain.
func NewQueue(wake func()) *Queue {
	q := &Queue{wake: wake}
	q.idle.L = &q.mu
	return q
}

// NewDirectQueue is NewQueue with a fast path: media pushed while the
// queue is empty and no consumer runs is handed to direct, on the pushing
// goroutine, instead of waking a consumer. A player that keeps up thus
// costs one non-blocking write per packet and no goroutine; one that falls
// behind (direct wrote less than the whole packet) gets the rest, and what
// follows, through its consumer, with the queue's bounds.
func NewDirectQueue(wake func(), direct DirectWriter) *Queue {
	q := NewQueue(wake)
	q.direct = direct
	return q
}

// startLocked marks a consumer active if one is needed and returns the
// function to start it, which the caller calls after unlocking.
func (q *Queue) startLocked() func() {
	if q.wake == nil || q.active || q.closed || len(q.items) == 0 {
		return nil
	}
	q.active = true
	return q.wake
}

// PushControl queues a control message. It fails with ErrQueueFull when the
// peer has let too many pile up.
func (q *Queue) PushControl(m *chunk.Message) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	if q.controlCount >= MaxQueueControl {
		q.mu.Unlock()
		return ErrQueueFull
	}
	q.items = append(q.items, Item{Control: m})
	q.controlCount++
	start := q.startLocked()
	q.mu.Unlock()
	if start != nil {
		start()
	}
	return nil
}

// PushMediaBatch queues pkts in order, queued at now, except what a player
// skipping to a keyframe does not take. When the bounds are exceeded (size,
// count, or media waiting longer than MaxQueueDelay), queued media is
// dropped and the player waits for the next keyframe. hasVideo tells
// whether the stream has video, so that an audio-only stream resumes on
// any audio packet. A queue made with NewDirectQueue that is empty, with
// no consumer running, hands the packets to its direct writer in one call;
// what that does not write is queued. It reports how many of pkts were
// queued or written.
func (q *Queue) PushMediaBatch(pkts []*Packet, hasVideo bool, now time.Time) int {
	if len(pkts) == 0 {
		return 0
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return 0
	}
	done, offset := 0, 0
	if q.direct != nil && len(q.items) == 0 && q.wake != nil && !q.active && !q.waitKeyframe {
		// Caught up: write directly, as the consumer for the moment, so
		// that nothing else writes to the peer meanwhile. Producers that
		// push meanwhile find a consumer active and leave it to us.
		q.active = true
		q.mu.Unlock()
		n := q.direct(pkts)
		q.mu.Lock()
		q.active = false
		q.taken += uint64(n)
		for done < len(pkts) && n >= pkts[done].Size() {
			n -= pkts[done].Size()
			done++
		}
		offset = n
		if q.closed {
			done = len(pkts)
		}
	}
	accepted := done
	if done < len(pkts) && offset > 0 {
		// The rest of a partly written packet goes before anything pushed
		// while it was being written, and is never dropped.
		p := pkts[done]
		if q.mediaCount == 0 {
			q.oldestMedia = now
		}
		q.items = append(q.items, Item{})
		copy(q.items[1:], q.items)
		q.items[0] = Item{Packet: p, Offset: offset}
		q.mediaBytes += p.Size() - offset
		q.mediaCount++
		done++
		accepted++
	}
	for _, p := range pkts[done:] {
		if q.pushLocked(p, hasVideo, now) {
			accepted++
		}
	}
	start := q.startLocked()
	if start == nil && !q.active {
		q.idle.Broadcast() // Finish may wait for the direct write to end
	}
	q.mu.Unlock()
	if start != nil {
		start()
	}
	return accepted
}

// pushLocked queues p as PushMediaBatch describes.
func (q *Queue) pushLocked(p *Packet, hasVideo bool, now time.Time) bool {
	essential := p.essential()
	if q.waitKeyframe && !essential {
		if !p.resumes(hasVideo) {
			return false
		}
		q.waitKeyframe = false
	}
	if !essential && (q.mediaBytes+p.Size() > MaxQueueBytes || q.mediaCount+1 > MaxQueuePackets ||
		q.mediaCount > 0 && now.Sub(q.oldestMedia) > MaxQueueDelay) {
		q.dropMediaLocked()
		q.overflows++
		if !p.resumes(hasVideo) {
			q.waitKeyframe = true
			return false
		}
	}
	if q.mediaCount == 0 {
		q.oldestMedia = now
	}
	q.items = append(q.items, Item{Packet: p})
	q.mediaBytes += p.Size()
	q.mediaCount++
	return true
}

// dropMediaLocked removes queued media that is not essential, keeping
// control messages and codec headers in order.
func (q *Queue) dropMediaLocked() {
	kept := q.items[:0]
	for _, it := range q.items {
		if it.Packet != nil && !it.Packet.essential() && it.Offset == 0 {
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

// takeLocked appends the pending items to dst and empties the queue.
func (q *Queue) takeLocked(dst []Item) []Item {
	dst = append(dst, q.items...)
	q.taken += uint64(q.mediaBytes)
	clear(q.items)
	q.items = q.items[:0]
	q.mediaBytes, q.mediaCount, q.controlCount = 0, 0, 0
	return dst
}

// Next is the consumer's call: it appends the pending items to dst and
// empties the queue; when nothing is pending (or the queue is closed) it
// marks the consumer stopped and returns nil, and the consumer must exit.
func (q *Queue) Next(dst []Item) []Item {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 || q.closed {
		q.active = false
		q.items = nil // an idle connection keeps no buffer
		q.idle.Broadcast()
		return nil
	}
	return q.takeLocked(dst)
}

// Drain appends the pending items to dst and empties the queue, for an
// owner without a consumer (or after WaitIdle).
func (q *Queue) Drain(dst []Item) []Item {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.takeLocked(dst)
}

// Finish stops starting consumers and waits until the running one, if any,
// has stopped. Items pushed meanwhile stay queued for a final Drain.
func (q *Queue) Finish() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.wake = nil
	for q.active {
		q.idle.Wait()
	}
}

// Close drops everything queued; later pushes are ignored.
func (q *Queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	clear(q.items)
	q.items = nil
	q.mediaBytes, q.mediaCount, q.controlCount = 0, 0, 0
}

// Drops reports how many times the player was skipped ahead to a keyframe.
func (q *Queue) Drops() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.drops
}

// Overflows reports how many times the player fell behind (past the
// queue's bounds) and skipped ahead to a keyframe.
func (q *Queue) Overflows() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.overflows
}

// Counters reports the media bytes handed to the connection (written
// directly or taken by its writer) and how many times the player was
// skipped ahead to a keyframe.
func (q *Queue) Counters() (taken, drops uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.taken, q.drops
}

// Len reports the number of pending items.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
