package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/client"
	"github.com/rtmp-server/rtmp-server/internal/hub"
	"github.com/rtmp-server/rtmp-server/internal/logging"
	"github.com/rtmp-server/rtmp-server/internal/message"
)

// State is where a forward stands.
type State string

// The states of a forward, in the order it goes through them.
const (
	StateConnecting State = "connecting"
	StateLive       State = "live"
	StateRetrying   State = "retrying"
	StateEnded      State = "ended"
)

// Errors a forward's connection ends with.
var (
	// ErrTargetStatus is an error status from the target while publishing.
	ErrTargetStatus = errors.New("forward: target sent an error status")
	// ErrTargetClosed is the target ending the connection.
	ErrTargetClosed = errors.New("forward: target closed the connection")
	// ErrRejected is the hub refusing the forward's player (the stream
	// was taken by a publisher with another key).
	ErrRejected = errors.New("forward: stream taken by another publisher")
)

// target is one forward: a publish to one URL, reconnected until stop.
type target struct {
	m        *Manager
	url      client.URL
	insecure bool
	log      *slog.Logger    // carries the masked URL as forward
	ctx      context.Context // ends at stop: the publish ended
	stop     context.CancelFunc

	mu      sync.Mutex
	pub     *hub.Publication // guarded by mu; the publication forwarded now
	state   State            // guarded by mu
	since   time.Time        // guarded by mu
	lastErr string           // guarded by mu

	bytes      atomic.Uint64 // written to the target, all connections together
	reconnects atomic.Uint64
	skips      atomic.Uint64             // of the connections before the current one
	queue      atomic.Pointer[hub.Queue] // the current connection's, while it plays
}

// skipCount reports the times the forward skipped to a keyframe because
// the target was too slow, on all its connections.
func (t *target) skipCount() uint64 {
	n := t.skips.Load()
	if q := t.queue.Load(); q != nil {
		n += q.Overflows()
	}
	return n
}

func newTarget(m *Manager, pub *hub.Publication, u client.URL, insecure bool, log *slog.Logger) *target {
	ctx, cancel := context.WithCancel(context.Background())
	return &target{
		m: m, url: u, insecure: insecure, pub: pub, ctx: ctx, stop: cancel,
		log: log.With("forward", Mask(u, pub.Key)),
	}
}

func (t *target) setPub(pub *hub.Publication) {
	t.mu.Lock()
	t.pub = pub
	t.mu.Unlock()
}

func (t *target) currentPub() *hub.Publication {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pub
}

func (t *target) status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	return Status{
		Target: Mask(t.url, t.pub.Key), State: t.state, Since: t.since, LastError: t.lastErr,
		Bytes: t.bytes.Load(), Reconnects: t.reconnects.Load(), Skips: t.skipCount(),
	}
}

// setState records a state change and logs it once: a retry that fails
// again the same way is not logged again.
func (t *target) setState(s State, err error, args ...any) {
	t.mu.Lock()
	prev, prevErr := t.state, t.lastErr
	errText := ""
	if err != nil {
		errText = clipErr(maskKey(err, t.pub.Key))
	} else if s == StateConnecting {
		errText = prevErr // a retry shows why the last connection failed until it is live
	}
	if s != prev {
		t.since = time.Now()
	}
	t.state, t.lastErr = s, errText
	t.mu.Unlock()
	if s == prev && errText == prevErr {
		return
	}
	switch s {
	case StateConnecting:
		if prev == "" {
			t.log.Info("forward: connecting", args...)
		}
	case StateLive:
		msg := "forward: live"
		if prev != StateConnecting || t.reconnects.Load() > 0 {
			msg = "forward: live again"
		}
		t.log.Info(msg, append(args, "reconnects", t.reconnects.Load())...)
	case StateRetrying:
		t.log.Warn("forward: target failed; retrying", append(args, "err", errText)...)
	case StateEnded:
		t.log.Info("forward: ended", append(args, "bytes", t.bytes.Load(), "reconnects", t.reconnects.Load(), "skips", t.skipCount())...)
	}
}

// run forwards until stop, reconnecting with backoff.
func (t *target) run() {
	backoff := t.m.MinBackoff
	for {
		t.setState(StateConnecting, nil)
		began := time.Now()
		live, err := t.session()
		if t.ctx.Err() != nil {
			t.setState(StateEnded, nil)
			return
		}
		if live && time.Since(began) >= StableAfter {
			backoff = t.m.MinBackoff
		}
		delay := jitter(backoff)
		backoff = min(2*backoff, t.m.MaxBackoff)
		t.setState(StateRetrying, err, "retry_in", delay.Round(time.Millisecond).String())
		timer := time.NewTimer(delay)
		select {
		case <-t.ctx.Done():
			timer.Stop()
			t.setState(StateEnded, nil)
			return
		case <-timer.C:
		}
		t.reconnects.Add(1)
		t.m.totals.reconnects.Add(1)
	}
}

// jitter spreads d by BackoffJitter either way, so that targets that
// failed together do not come back together.
func jitter(d time.Duration) time.Duration {
	f := 1 + BackoffJitter*(2*rand.Float64()-1)
	return time.Duration(float64(d) * f)
}

// events hears the hub's player events (called in order with the media,
// outside the hub's locks; they must not block).
type events struct{ rejected chan error }

func (e *events) Accepted()       {}
func (e *events) PublishStarted() {}
func (e *events) Unpublished()    {}
func (e *events) Rejected(err error) {
	select {
	case e.rejected <- fmt.Errorf("%w: %w", ErrRejected, err):
	default:
	}
}

// session makes one connection to the target and forwards over it until
// it fails or the publish ends. live reports whether the target accepted
// the publish; err is nil when the publish ended.
func (t *target) session() (live bool, err error) {
	ctx := t.ctx
	conn, err := client.DialURL(ctx, t.url, t.url.TLSConfig(t.insecure), t.m.DialTimeout)
	if err != nil {
		return false, fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(t.m.DialTimeout))
	stopSetup := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	err = conn.StartPublish(t.url)
	if !stopSetup() || ctx.Err() != nil {
		return err == nil, ctx.Err()
	}
	if err != nil {
		return false, err
	}
	_ = conn.SetDeadline(time.Time{})

	wake := make(chan struct{}, 1)
	q := hub.NewQueue(func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	ev := &events{rejected: make(chan error, 1)}
	pub := t.currentPub()
	player := hub.NewPlayer(0, pub.Key, q, ev)
	if _, err := t.m.hub.Play(pub.Channel, player); err != nil {
		return true, fmt.Errorf("joining the stream: %w", err)
	}
	t.queue.Store(q)
	defer func() {
		t.skips.Add(q.Overflows())
		t.m.totals.skips.Add(q.Overflows())
		t.queue.Store(nil)
	}()
	leave := func() {
		t.m.hub.StopPlaying(player)
		q.Close()
	}

	readErr := make(chan error, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		readErr <- readTarget(conn)
	}()
	defer func() {
		_ = conn.Close()
		<-readDone
	}()

	// When the publish ends, a write blocked on a target that does not
	// read gives up within FinishTimeout, not WriteTimeout.
	stopWrites := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now().Add(t.m.FinishTimeout)) })
	defer stopWrites()

	t.setState(StateLive, nil)
	w := &wireWriter{t: t, conn: conn, q: q, streamID: conn.StreamID()}
	var items []hub.Item
	for {
		select {
		case <-wake:
			for {
				items = q.Next(items[:0])
				if items == nil {
					break
				}
				if err := w.write(items, time.Now().Add(t.m.WriteTimeout)); err != nil {
					leave()
					return true, err
				}
			}
		case err := <-readErr:
			leave()
			return true, err
		case err := <-ev.rejected:
			leave()
			return true, err
		case <-ctx.Done():
			t.finish(conn, w, player, q, readErr)
			return true, nil
		}
	}
}

// finish ends the target's stream cleanly: what the publisher sent last
// (StopPlaying waits for the batch in flight), then FCUnpublish and
// deleteStream; it half-closes and waits for the target to close, so that
// nothing it has not read yet is lost to a reset.
func (t *target) finish(conn *client.Conn, w *wireWriter, player *hub.Player, q *hub.Queue, readErr <-chan error) {
	deadline := time.Now().Add(t.m.FinishTimeout)
	t.m.hub.StopPlaying(player)
	items := q.Drain(nil)
	q.Close()
	if err := w.write(items, deadline); err != nil {
		return
	}
	_ = conn.SetDeadline(deadline)
	if err := conn.EndPublish(t.url.Name); err != nil {
		return
	}
	_ = conn.CloseWrite()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-readErr:
	case <-timer.C:
	}
}

// readTarget reads what the target sends while it is published to (the
// session answers pings and acknowledges) and returns why it stopped: an
// error status, or the connection's end.
func readTarget(conn *client.Conn) error {
	for {
		m, err := conn.ReadMessage()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
				return ErrTargetClosed
			}
			return fmt.Errorf("%w: %w", ErrTargetClosed, err)
		}
		if m.Type != message.TypeCommandAMF0 && m.Type != message.TypeCommandAMF3 {
			continue
		}
		msg, err := message.Decode(m)
		if err != nil {
			return err
		}
		cmd, ok := msg.(*message.Command)
		if !ok {
			continue
		}
		level, code, desc := cmd.StatusInfo()
		if cmd.Name == message.CommandError || (cmd.Name == message.CommandOnStatus && level == message.LevelError) {
			return fmt.Errorf("%w: %s: %s", ErrTargetStatus, logging.Clip(code), logging.Clip(desc))
		}
	}
}

// wireWriter writes queued packets to the target: their shared chunks,
// announcing the stream's chunk size first.
type wireWriter struct {
	t        *target
	conn     *client.Conn
	q        *hub.Queue
	streamID uint32
	bufs     net.Buffers
	slow     bool // logged that the target fell behind
}

func (w *wireWriter) write(items []hub.Item, deadline time.Time) error {
	w.bufs = w.bufs[:0]
	for _, it := range items {
		pkt := it.Packet
		if pkt == nil {
			continue
		}
		if pkt.ChunkSize != w.conn.ChunkSize() {
			if err := w.flush(deadline); err != nil {
				return err
			}
			_ = w.conn.SetDeadline(deadline)
			err := w.conn.SetChunkSize(pkt.ChunkSize)
			_ = w.conn.SetDeadline(time.Time{})
			if err != nil {
				return fmt.Errorf("write: %w", err)
			}
		}
		w.bufs = append(w.bufs, pkt.Wire(w.streamID)[it.Offset:])
	}
	if err := w.flush(deadline); err != nil {
		return err
	}
	if !w.slow && w.q.Overflows() > 0 {
		w.slow = true
		w.t.log.Warn("forward: target too slow; skipped to the next keyframe")
	}
	return nil
}

func (w *wireWriter) flush(deadline time.Time) error {
	if len(w.bufs) == 0 {
		return nil
	}
	bufs := w.bufs
	n, err := w.conn.WriteWire(&bufs, deadline)
	w.t.bytes.Add(uint64(n))
	w.t.m.totals.bytes.Add(uint64(n))
	clear(w.bufs)
	w.bufs = w.bufs[:0]
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}
