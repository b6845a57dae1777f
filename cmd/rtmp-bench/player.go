package main

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/client"
	"github.com/rtmp-server/rtmp-server/internal/message"
)

// playerKind says how a player behaves once it plays.
type playerKind uint8

const (
	// reading players read everything and measure it.
	reading playerKind = iota
	// stalled players never read after Play.
	stalled
	// idle players play a stream nobody publishes; they read to answer pings.
	idle
)

func (k playerKind) String() string {
	switch k {
	case stalled:
		return "stalled"
	case idle:
		return "idle"
	}
	return "player"
}

// player is one playing connection. Its counters are owned by its goroutine
// and read after that goroutine has ended; done is read by the run while it
// plays.
type player struct {
	id       int
	kind     playerKind
	app, key string
	pub      *publisher // the publisher it watches; nil for idle players

	conn atomic.Pointer[client.Conn]
	// done is set once the player has read past the publisher's last
	// measured frame, or has stopped.
	done atomic.Bool

	received  uint64        // measured frames read
	bytes     uint64        // their payload bytes
	gaps      uint64        // jumps in the sequence between measured frames
	reordered uint64        // frames older than one already read
	lastSeq   uint64        // highest sequence number read
	join      time.Duration // from dialling to the first stamped frame; 0 if none
	latency   histogram
	err       error // why it stopped early, nil when told to stop
	// setupErr is why it could not play; written before setup is called.
	setupErr error
}

// failure is why the player stopped early, nil if it played to the end.
func (p *player) failure() error {
	if p.setupErr != nil {
		return p.setupErr
	}
	return p.err
}

// play connects, plays and reads until the connection is closed. setup is
// called once Play has been answered or has failed.
func (p *player) play(r *run, setup func()) {
	began := time.Now()
	c, err := p.connect(r)
	if err != nil {
		p.setupErr = err
		p.done.Store(true)
		setup()
		return
	}
	p.conn.Store(c)
	setup()
	if r.closing.Load() {
		c.Close()
	}
	if p.kind == stalled {
		return
	}
	for _, m := range c.Pending {
		p.handle(r, m, began)
	}
	c.Pending = nil
	for {
		m, err := c.ReadMessage()
		if err != nil {
			if !r.closing.Load() {
				p.err = err
			}
			p.done.Store(true)
			return
		}
		p.handle(r, m, began)
	}
}

func (p *player) connect(r *run) (*client.Conn, error) {
	c, err := client.Dial(r.addr, nil, r.timeout)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(r.timeout))
	if err := c.Connect(p.app); err != nil {
		c.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	if _, err := c.CreateStream(); err != nil {
		c.Close()
		return nil, fmt.Errorf("createStream: %w", err)
	}
	if _, err := c.Play(p.key); err != nil {
		c.Close()
		return nil, fmt.Errorf("play: %w", err)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// handle accounts for one message. It must not allocate: it runs for every
// message of every player.
func (p *player) handle(r *run, m *chunk.Message, began time.Time) {
	if m.Type != message.TypeVideo && m.Type != message.TypeAudio {
		return
	}
	flags, seq, sent, ok := readStamp(m.Type, m.Payload)
	if !ok {
		return
	}
	now := r.now()
	if p.join == 0 {
		p.join = time.Since(began)
	}
	if seq <= p.lastSeq {
		p.reordered++
		return
	}
	if flags&stampMeasured != 0 {
		if p.lastSeq != 0 && seq != p.lastSeq+1 && p.received > 0 {
			p.gaps++
		}
		p.received++
		p.bytes += uint64(len(m.Payload))
		p.latency.record(time.Duration(now - sent))
	}
	p.lastSeq = seq
	if p.pub != nil && seq > p.pub.lastMeasured.Load() {
		p.done.Store(true)
	}
}

// stalledState reports, at the end of a run, whether the server has closed
// a stalled player's connection: it reads what is buffered for a short while
// and looks for the end of the stream.
func (p *player) stalledState() string {
	c := p.conn.Load()
	if c == nil {
		return "failed"
	}
	nc := c.NetConn()
	_ = nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, err := io.Copy(io.Discard, nc)
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return "open"
	}
	return "closed"
}
