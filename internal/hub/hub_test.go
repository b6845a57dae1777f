package hub

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/media"
	"github.com/rtmp-server/rtmp-server/internal/message"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

type fakePublisher struct {
	id     uint64
	idle   atomic.Int64
	kicked atomic.Pointer[error]
}

func (f *fakePublisher) SessionID() uint64   { return f.id }
func (f *fakePublisher) Idle() time.Duration { return time.Duration(f.idle.Load()) }
func (f *fakePublisher) Kick(reason error)   { f.kicked.Store(&reason) }

type events struct {
	log []string
}

func (e *events) Accepted()          { e.log = append(e.log, "accepted") }
func (e *events) PublishStarted()    { e.log = append(e.log, "started") }
func (e *events) Unpublished()       { e.log = append(e.log, "unpublished") }
func (e *events) Rejected(err error) { e.log = append(e.log, "rejected") }

var (
	seqVideo = []byte{0x17, 0x00, 0, 0, 0, 1}
	seqAudio = []byte{0xAF, 0x00, 0x12, 0x10}
)

func key(n byte) []byte   { return []byte{0x17, 0x01, 0, 0, 0, n} }
func inter(n byte) []byte { return []byte{0x27, 0x01, 0, 0, 0, n} }
func audio(n byte) []byte { return []byte{0xAF, 0x01, n} }

func opts() PublishOptions {
	return PublishOptions{ChunkSize: 128, GOPCacheBytes: 1 << 20, StaleAfter: time.Second}
}

// drained returns the payload tags (last byte) of queued media.
func drained(q *Queue) []string {
	var out []string
	for _, it := range q.Drain(nil) {
		if it.Packet == nil {
			continue
		}
		r := chunk.NewReader(bytes.NewReader(it.Packet.Wire(WireStreamID)))
		m, err := r.ReadMessage()
		if err != nil {
			panic(err)
		}
		out = append(out, fmt.Sprintf("%s:%d", it.Packet.Kind, m.Payload[len(m.Payload)-1]))
	}
	return out
}

func TestPacketWireStreamID(t *testing.T) {
	payload := bytes.Repeat([]byte{7}, 300)
	p := NewPacket(message.TypeVideo, 0x1234567, payload, 128)
	for _, id := range []uint32{WireStreamID, 5} {
		r := chunk.NewReader(bytes.NewReader(p.Wire(id)))
		m, err := r.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if m.StreamID != id || m.Timestamp != 0x1234567 || !bytes.Equal(m.Payload, payload) {
			t.Fatalf("stream %d: got id %d ts %x len %d", id, m.StreamID, m.Timestamp, len(m.Payload))
		}
	}
	if !bytes.Equal(p.Wire(WireStreamID), p.wire) {
		t.Fatal("patching changed the shared bytes")
	}
}

func TestGOPCacheJoin(t *testing.T) {
	h := New()
	pub, _, err := h.Publish("ch", "k", "id", &fakePublisher{id: 1}, opts())
	if err != nil {
		t.Fatal(err)
	}
	pub.Write(message.TypeVideo, 0, seqVideo, false)
	pub.Write(message.TypeAudio, 0, seqAudio, false)
	pub.Write(message.TypeVideo, 0, key(1), false)
	pub.Write(message.TypeVideo, 40, inter(2), false)
	pub.Write(message.TypeVideo, 80, key(3), false)
	pub.Write(message.TypeAudio, 90, audio(4), false)
	pub.Write(message.TypeVideo, 120, inter(5), false)

	q := NewQueue(nil)
	ev := &events{}
	if waiting, err := h.Play("ch", NewPlayer(2, "k", q, ev)); err != nil || waiting {
		t.Fatalf("Play: waiting %v err %v", waiting, err)
	}
	got := fmt.Sprint(drained(q))
	want := "[sequence-header:1 sequence-header:16 keyframe:3 frame:4 frame:5]"
	if got != want {
		t.Fatalf("joined with %s, want %s", got, want)
	}
	if fmt.Sprint(ev.log) != "[accepted]" {
		t.Fatalf("events %v", ev.log)
	}
}

func TestGOPCacheOverflowKeepsNothingUntilNextKeyframe(t *testing.T) {
	h := New()
	o := opts()
	o.GOPCacheBytes = 200
	pub := mustPublish(t, h, "ch", "k", "id", &fakePublisher{}, o)
	pub.Write(message.TypeVideo, 0, key(1), false)
	big := append(inter(2), bytes.Repeat([]byte{0}, 300)...)
	big = append(big, 2)
	pub.Write(message.TypeVideo, 40, big, false)
	pub.Write(message.TypeVideo, 80, inter(3), false)
	q := NewQueue(nil)
	mustPlay(t, h, "ch", NewPlayer(2, "k", q, &events{}))
	if got := drained(q); len(got) != 0 {
		t.Fatalf("joined with %v, want nothing until the next keyframe", got)
	}
	pub.Write(message.TypeVideo, 120, inter(4), false)
	pub.Write(message.TypeVideo, 160, key(5), false)
	pub.Sync()
	if got := fmt.Sprint(drained(q)); got != "[keyframe:5]" {
		t.Fatalf("got %s", got)
	}
}

func TestQueueSkipsToKeyframeWhenFull(t *testing.T) {
	q := NewQueue(nil)
	mustPushControl(t, q, &chunk.Message{Type: message.TypeUserControl})
	big := bytes.Repeat([]byte{0}, MaxQueueBytes/4)
	frame := func(kind media.Kind, tag byte) *Packet {
		p := append([]byte{0x27, 0x01}, big...)
		if kind == media.Keyframe {
			p[0] = 0x17
		}
		return NewPacket(message.TypeVideo, 0, append(p, tag), 4096)
	}
	pushMedia(q, NewPacket(message.TypeVideo, 0, seqVideo, 4096), true, time.Now())
	for i := 0; i < 3; i++ {
		if !pushMedia(q, frame(media.Frame, byte(i)), true, time.Now()) {
			t.Fatalf("frame %d refused below the bound", i)
		}
	}
	if pushMedia(q, frame(media.Frame, 9), true, time.Now()) {
		t.Fatal("frame over the bound accepted")
	}
	if pushMedia(q, frame(media.Frame, 10), true, time.Now()) {
		t.Fatal("inter frame accepted while waiting for a keyframe")
	}
	if !pushMedia(q, frame(media.Keyframe, 11), true, time.Now()) {
		t.Fatal("keyframe refused")
	}
	items := q.Drain(nil)
	if len(items) != 3 || items[0].Control == nil || items[1].Packet.Kind != media.SequenceHeader || items[2].Packet.Kind != media.Keyframe {
		t.Fatalf("queue after skip: %+v", items)
	}
	if q.Drops() != 1 {
		t.Fatalf("drops = %d", q.Drops())
	}
}

func TestQueueControlOverflow(t *testing.T) {
	q := NewQueue(nil)
	for i := 0; i < MaxQueueControl; i++ {
		if err := q.PushControl(&chunk.Message{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.PushControl(&chunk.Message{}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("got %v, want ErrQueueFull", err)
	}
}

func TestPublishRules(t *testing.T) {
	h := New()
	first := &fakePublisher{id: 1}
	if _, _, err := h.Publish("ch", "k", "a", first, opts()); err != nil {
		t.Fatal(err)
	}
	// Busy for another key, and for the same key while the publisher is active.
	if err := h.CheckPublish("ch", "other", opts()); !errors.Is(err, ErrStreamBusy) {
		t.Fatalf("other key: %v", err)
	}
	if _, _, err := h.Publish("ch", "k", "b", &fakePublisher{id: 2}, opts()); !errors.Is(err, ErrStreamBusy) {
		t.Fatalf("same key, active publisher: %v", err)
	}
	// Same key, silent publisher: replaced and kicked.
	first.idle.Store(int64(2 * time.Second))
	if err := h.CheckPublish("ch", "k", opts()); err != nil {
		t.Fatal(err)
	}
	pub, replaced, err := h.Publish("ch", "k", "c", &fakePublisher{id: 3}, opts())
	if err != nil || replaced == nil || replaced.StreamID != "a" {
		t.Fatalf("replace: %v %v", replaced, err)
	}
	if r := first.kicked.Load(); r == nil || !errors.Is(*r, ErrReplaced) {
		t.Fatal("replaced publisher not kicked")
	}
	if !replaced.Ended() || replaced.Write(message.TypeVideo, 0, key(1), false) {
		t.Fatal("replaced publication still writes")
	}
	if h.Unpublish(replaced) {
		t.Fatal("unpublishing a replaced publication ended the stream")
	}
	if !h.Unpublish(pub) || h.Unpublish(pub) {
		t.Fatal("Unpublish not exactly once")
	}
	if s := h.Stats(); s.Publishers != 0 || s.Streams != 0 {
		t.Fatalf("stats after unpublish: %+v", s)
	}
}

func TestWaitingPlayers(t *testing.T) {
	h := New()
	good, bad := &events{}, &events{}
	qg, qb := NewQueue(nil), NewQueue(nil)
	pg, pb := NewPlayer(1, "k", qg, good), NewPlayer(2, "x", qb, bad)
	for _, p := range []*Player{pg, pb} {
		if waiting, err := h.Play("ch", p); err != nil || !waiting {
			t.Fatalf("waiting %v err %v", waiting, err)
		}
	}
	pub := mustPublish(t, h, "ch", "k", "id", &fakePublisher{}, opts())
	if fmt.Sprint(good.log) != "[accepted started]" || fmt.Sprint(bad.log) != "[accepted rejected]" {
		t.Fatalf("events: good %v bad %v", good.log, bad.log)
	}
	pub.Write(message.TypeVideo, 0, key(1), false)
	pub.Sync()
	if got := fmt.Sprint(drained(qg)); got != "[keyframe:1]" {
		t.Fatalf("good player got %s", got)
	}
	if got := drained(qb); len(got) != 0 {
		t.Fatalf("rejected player got %v", got)
	}
	h.Unpublish(pub)
	if fmt.Sprint(good.log) != "[accepted started unpublished]" {
		t.Fatalf("events %v", good.log)
	}
	if s := h.Stats(); s.Players != 1 || s.Streams != 1 {
		t.Fatalf("stats: %+v", s)
	}
	h.StopPlaying(pg)
	h.StopPlaying(pg)
	if s := h.Stats(); s.Players != 0 || s.Streams != 0 {
		t.Fatalf("stats after stop: %+v", s)
	}
	if _, err := h.Play("ch", NewPlayer(3, "k", NewQueue(nil), &events{})); err != nil {
		t.Fatal(err)
	}
	if !h.Ping(time.Second) {
		t.Fatal("Ping failed on an idle hub")
	}
}

func TestPlayBadKey(t *testing.T) {
	h := New()
	mustPublish(t, h, "ch", "k", "id", &fakePublisher{}, opts())
	if _, err := h.Play("ch", NewPlayer(1, "nope", NewQueue(nil), &events{})); !errors.Is(err, ErrBadKey) {
		t.Fatalf("got %v", err)
	}
}

// BenchmarkFanOut measures one media message delivered to N player queues
// (and taken out by their writers).
func BenchmarkFanOut(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("players=%d", n), func(b *testing.B) {
			h := New()
			pub := mustPublish(b, h, "ch", "k", "id", &fakePublisher{}, PublishOptions{ChunkSize: 4096, GOPCacheBytes: 1 << 20})
			queues := make([]*Queue, n)
			for i := range queues {
				queues[i] = NewQueue(nil)
				mustPlay(b, h, "ch", NewPlayer(uint64(i), "k", queues[i], &events{}))
			}
			frame := append(inter(0), bytes.Repeat([]byte{1}, 16<<10)...)
			items := make([]Item, 0, 64)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				pub.Write(message.TypeVideo, uint32(i*33), frame, false)
				if i%32 == 31 {
					pub.Sync()
					for _, q := range queues {
						items = q.Drain(items[:0])
						for _, it := range items {
							_ = it.Packet.Wire(WireStreamID) // what each writer does
						}
					}
				}
			}
		})
	}
}

// BenchmarkFanOutDirect measures one media message delivered to N players
// that keep up: each gets it in one direct write (here to a counter).
func BenchmarkFanOutDirect(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("players=%d", n), func(b *testing.B) {
			h := New()
			pub := mustPublish(b, h, "ch", "k", "id", &fakePublisher{}, PublishOptions{ChunkSize: 4096, GOPCacheBytes: 1 << 20})
			var written atomic.Int64
			for i := range n {
				q := NewDirectQueue(func() { b.Fatal("a player that keeps up needed a writer") }, func(pkts []*Packet) int {
					size := 0
					for _, p := range pkts {
						size += len(p.Wire(WireStreamID))
					}
					written.Add(int64(size))
					return size
				})
				mustPlay(b, h, "ch", NewPlayer(uint64(i), "k", q, &events{}))
			}
			frame := append(inter(0), bytes.Repeat([]byte{1}, 16<<10)...)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				pub.Write(message.TypeVideo, uint32(i*33), frame, false)
				pub.Sync()
			}
			b.StopTimer()
			if written.Load() == 0 {
				b.Fatal("nothing written")
			}
		})
	}
}

func TestQueueDelayBound(t *testing.T) {
	q := NewQueue(nil)
	t0 := time.Now()
	if !pushMedia(q, NewPacket(message.TypeVideo, 0, key(1), 128), true, t0) {
		t.Fatal("keyframe refused")
	}
	pushMedia(q, NewPacket(message.TypeVideo, 40, inter(2), 128), true, t0.Add(time.Second))
	// Media queued longer than MaxQueueDelay: the player skips ahead.
	if pushMedia(q, NewPacket(message.TypeVideo, 80, inter(3), 128), true, t0.Add(MaxQueueDelay+time.Millisecond)) {
		t.Fatal("frame accepted behind a queue older than MaxQueueDelay")
	}
	if !pushMedia(q, NewPacket(message.TypeVideo, 120, key(4), 128), true, t0.Add(MaxQueueDelay+2*time.Millisecond)) {
		t.Fatal("next keyframe refused")
	}
	if got := fmt.Sprint(drained(q)); got != "[keyframe:4]" {
		t.Fatalf("queue after the skip: %s", got)
	}
}

func TestQueueConsumer(t *testing.T) {
	var q *Queue
	wakes := make(chan struct{}, 10)
	q = NewQueue(func() { wakes <- struct{}{} })
	mustPushControl(t, q, &chunk.Message{Type: 1})
	mustPushControl(t, q, &chunk.Message{Type: 2})
	if len(wakes) != 1 {
		t.Fatalf("%d wakes for two pushes, want one consumer started", len(wakes))
	}
	<-wakes
	if items := q.Next(nil); len(items) != 2 {
		t.Fatalf("Next returned %d items", len(items))
	}
	if q.Next(nil) != nil {
		t.Fatal("Next on an empty queue did not stop the consumer")
	}
	mustPushControl(t, q, &chunk.Message{Type: 3})
	if len(wakes) != 1 {
		t.Fatal("no new consumer after the previous one stopped")
	}
	<-wakes
	done := make(chan struct{})
	go func() {
		q.Finish() // waits for the running consumer
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("Finish returned while a consumer was active")
	case <-time.After(50 * time.Millisecond):
	}
	q.Next(nil)
	if q.Next(nil) != nil {
		t.Fatal("consumer not stopped")
	}
	<-done
	mustPushControl(t, q, &chunk.Message{Type: 4})
	if len(wakes) != 0 {
		t.Fatal("consumer started after Finish")
	}
	if items := q.Drain(nil); len(items) != 1 {
		t.Fatalf("final drain: %d items", len(items))
	}
}

func TestGOPBudgetAcrossStreams(t *testing.T) {
	h := New()
	frame := append(key(1), bytes.Repeat([]byte{0}, 100)...)
	size := int64(NewPacket(message.TypeVideo, 0, frame, 128).Size())
	h.SetGOPBudget(3 * size)
	a := mustPublish(t, h, "a", "k", "1", &fakePublisher{}, opts())
	b := mustPublish(t, h, "b", "k", "2", &fakePublisher{}, opts())
	interFrame := append(inter(2), bytes.Repeat([]byte{0}, 100)...)
	a.Write(message.TypeVideo, 0, frame, false)
	a.Write(message.TypeVideo, 40, interFrame, false)
	b.Write(message.TypeVideo, 0, frame, false)
	if got := h.gopBytes.Load(); got != 3*size {
		t.Fatalf("held %d, want %d", got, 3*size)
	}
	// b's next frame would pass the budget: b keeps nothing until its next keyframe.
	b.Write(message.TypeVideo, 40, interFrame, false)
	if got := h.gopBytes.Load(); got != 2*size {
		t.Fatalf("held %d after overflow, want %d", got, 2*size)
	}
	h.Unpublish(a)
	h.Unpublish(b)
	if got := h.gopBytes.Load(); got != 0 {
		t.Fatalf("held %d after unpublish", got)
	}
}

// pushMedia pushes one packet and reports whether it was queued (or written).
func pushMedia(q *Queue, p *Packet, hasVideo bool, now time.Time) bool {
	return q.PushMediaBatch([]*Packet{p}, hasVideo, now) == 1
}

// fakeSocket is a DirectWriter that takes at most room bytes in all.
type fakeSocket struct {
	room  int
	wrote []byte
	calls int
	// during, if set, runs inside the write (as a concurrent producer would).
	during func()
}

func (f *fakeSocket) write(pkts []*Packet) int {
	f.calls++
	if f.during != nil {
		f.during()
	}
	n := 0
	for _, p := range pkts {
		b := p.Wire(WireStreamID)
		take := min(len(b), f.room)
		f.wrote = append(f.wrote, b[:take]...)
		f.room -= take
		n += take
		if take < len(b) {
			break
		}
	}
	return n
}

func TestDirectQueueWritesWhenCaughtUp(t *testing.T) {
	wakes := 0
	sock := &fakeSocket{room: 1 << 20}
	q := NewDirectQueue(func() { wakes++ }, sock.write)
	a, b := NewPacket(message.TypeVideo, 0, key(1), 128), NewPacket(message.TypeVideo, 40, inter(2), 128)
	if n := q.PushMediaBatch([]*Packet{a, b}, true, time.Now()); n != 2 {
		t.Fatalf("accepted %d of 2", n)
	}
	if sock.calls != 1 || q.Len() != 0 || wakes != 0 {
		t.Fatalf("calls %d, queued %d, wakes %d: want one direct write, nothing queued, no writer", sock.calls, q.Len(), wakes)
	}
	if want := append(append([]byte(nil), a.Wire(WireStreamID)...), b.Wire(WireStreamID)...); !bytes.Equal(sock.wrote, want) {
		t.Fatal("direct write is not the packets' wire form")
	}
	// A control message pushed during the direct write waits for it, then
	// starts the writer.
	sock.during = func() {
		if err := q.PushControl(&chunk.Message{Type: message.TypeUserControl}); err != nil {
			t.Error(err)
		}
	}
	pushMedia(q, NewPacket(message.TypeVideo, 80, inter(3), 128), true, time.Now())
	if wakes != 1 || q.Len() != 1 {
		t.Fatalf("wakes %d, queued %d after a control message raced a direct write", wakes, q.Len())
	}
}

func TestDirectQueuePartialWrite(t *testing.T) {
	wakes := 0
	a := NewPacket(message.TypeVideo, 0, key(1), 128)
	b := NewPacket(message.TypeVideo, 40, append(inter(2), bytes.Repeat([]byte{9}, 300)...), 128)
	c := NewPacket(message.TypeVideo, 80, inter(3), 128)
	sock := &fakeSocket{room: a.Size() + 100} // all of a, part of b
	var q *Queue
	sock.during = func() {
		if err := q.PushControl(&chunk.Message{Type: message.TypeUserControl}); err != nil {
			t.Error(err)
		}
	}
	q = NewDirectQueue(func() { wakes++ }, sock.write)
	if n := q.PushMediaBatch([]*Packet{a, b, c}, true, time.Now()); n != 3 {
		t.Fatalf("accepted %d of 3", n)
	}
	if wakes != 1 {
		t.Fatalf("%d writers started, want 1 for the rest", wakes)
	}
	// Media beyond the queue's age bound makes the player skip ahead, but
	// the rest of b is never dropped: the peer has its start.
	pushMedia(q, NewPacket(message.TypeVideo, 120, inter(4), 128), true, time.Now().Add(2*MaxQueueDelay))
	items := q.Drain(nil)
	if len(items) != 2 || items[0].Packet != b || items[0].Offset != 100 || items[1].Control == nil {
		t.Fatalf("queue after a partial write: %+v, want the rest of b (offset 100) then the control message", items)
	}
	// The bytes written plus the rest make whole, parseable messages.
	stream := append(sock.wrote, b.Wire(WireStreamID)[items[0].Offset:]...)
	r := chunk.NewReader(bytes.NewReader(stream))
	for i, want := range []*Packet{a, b} {
		m, err := r.ReadMessage()
		if err != nil || m.Timestamp != want.Timestamp {
			t.Fatalf("message %d: %v %+v", i, err, m)
		}
	}
}

// TestFanOutExactlyOnce has players join while a publisher writes: each
// gets the stream from a keyframe on, every packet once and in order,
// whether it came from the GOP cache or the fan-out.
func TestFanOutExactlyOnce(t *testing.T) {
	for _, players := range []int{3, CoalesceMinPlayers + 10} {
		t.Run(fmt.Sprint(players), func(t *testing.T) {
			h := New()
			pub, _, err := h.Publish("ch", "k", "id", &fakePublisher{}, opts())
			if err != nil {
				t.Fatal(err)
			}
			queues := make([]*Queue, players)
			joined := make(chan struct{})
			go func() {
				defer close(joined)
				for i := range queues {
					queues[i] = NewQueue(nil)
					if _, err := h.Play("ch", NewPlayer(uint64(i), "k", queues[i], &events{})); err != nil {
						t.Error(err)
					}
				}
			}()
			const n = 250
			for i := 0; i < n; i++ {
				if i == n-10 {
					<-joined // everyone joined before the last GOP
				}
				frame := inter(byte(i))
				if i%10 == 0 {
					frame = key(byte(i))
				}
				pub.Write(message.TypeVideo, uint32(i*40), frame, false)
			}
			pub.Sync()
			for i, q := range queues {
				got := drained(q)
				if len(got) == 0 {
					t.Fatalf("player %d got nothing", i)
				}
				var first int
				if _, err := fmt.Sscanf(got[0], "keyframe:%d", &first); err != nil || first%10 != 0 {
					t.Fatalf("player %d starts with %s, want a keyframe", i, got[0])
				}
				for j, g := range got {
					var k int
					if _, err := fmt.Sscanf(g[strings.Index(g, ":")+1:], "%d", &k); err != nil || k != first+j {
						t.Fatalf("player %d: packet %d is %s, want %d (a gap or a duplicate): %v", i, j, g, first+j, got)
					}
				}
				if first+len(got) != n {
					t.Fatalf("player %d ends at %d, want %d", i, first+len(got)-1, n-1)
				}
			}
		})
	}
}

// TestUnpublishDeliversPending: what the publisher sent reaches players
// before they are told it left, even while a batch is being collected.
func TestUnpublishDeliversPending(t *testing.T) {
	h := New()
	pub := mustPublish(t, h, "ch", "k", "id", &fakePublisher{}, opts())
	queues := make([]*Queue, CoalesceMinPlayers) // enough that batches wait
	for i := range queues {
		queues[i] = NewQueue(nil)
		mustPlay(t, h, "ch", NewPlayer(uint64(i), "k", queues[i], &events{}))
	}
	pub.Write(message.TypeVideo, 0, key(7), false)
	h.Unpublish(pub)
	for i, q := range queues {
		if got := fmt.Sprint(drained(q)); got != "[keyframe:7]" {
			t.Fatalf("player %d got %s before the end", i, got)
		}
	}
}

// TestKick: Kick ends the connection of the channel's publisher, with the
// reason given, when match accepts its publication (nil matches any), and
// reports whether it did. Nothing else is kicked; the publication stays
// until its connection unpublishes.
func TestKick(t *testing.T) {
	h := New()
	a, b := &fakePublisher{id: 1}, &fakePublisher{id: 2}
	pubA, _, err := h.Publish("a", "ka", "sa", a, opts())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Publish("b", "kb", "sb", b, opts()); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Play("waiting", NewPlayer(3, "k", NewQueue(nil), &events{})); err != nil {
		t.Fatal(err)
	}
	reason := errors.New("kicked by test")
	kickedWith := func(f *fakePublisher) error {
		if r := f.kicked.Load(); r != nil {
			return *r
		}
		return nil
	}

	tests := []struct {
		name    string
		channel string
		match   func(*Publication) bool
		want    bool
	}{
		{"no such channel", "nope", nil, false},
		{"channel with players only", "waiting", nil, false},
		{"match refuses", "a", func(p *Publication) bool { return p.Key == "other" }, false},
		{"match sees the publication", "a", func(p *Publication) bool { return p == pubA && p.HasKey("ka") }, true},
	}
	for _, tt := range tests {
		if got := h.Kick(tt.channel, reason, tt.match); got != tt.want {
			t.Errorf("%s: Kick(%q) = %v, want %v", tt.name, tt.channel, got, tt.want)
		}
		if tt.want {
			continue
		}
		if r := kickedWith(a); r != nil {
			t.Fatalf("%s: publisher of a kicked (%v)", tt.name, r)
		}
	}
	if r := kickedWith(a); !errors.Is(r, reason) {
		t.Fatalf("publisher of a kicked with %v, want %v", r, reason)
	}
	if r := kickedWith(b); r != nil {
		t.Fatalf("publisher of b kicked too (%v)", r)
	}
	if h.Lookup("a") != pubA {
		t.Fatal("Kick removed the publication: its connection does that when it ends")
	}
	if !h.Kick("b", reason, nil) || !errors.Is(kickedWith(b), reason) {
		t.Fatal("Kick with a nil match did not kick b")
	}
	h.Unpublish(pubA)
	if h.Kick("a", reason, nil) {
		t.Fatal("Kick reported a publisher after it unpublished")
	}
}

// mustPublish is h.Publish; an error fails the test.
func mustPublish(tb testing.TB, h *Hub, channel, key, streamID string, conn Publisher, o PublishOptions) *Publication {
	tb.Helper()
	pub, _, err := h.Publish(channel, key, streamID, conn, o)
	if err != nil {
		tb.Fatalf("publish %s: %v", channel, err)
	}
	return pub
}

// mustPlay is h.Play; an error fails the test.
func mustPlay(tb testing.TB, h *Hub, channel string, p *Player) {
	tb.Helper()
	if _, err := h.Play(channel, p); err != nil {
		tb.Fatalf("play %s: %v", channel, err)
	}
}

// mustPushControl is q.PushControl; an error fails the test.
func mustPushControl(tb testing.TB, q *Queue, m *chunk.Message) {
	tb.Helper()
	if err := q.PushControl(m); err != nil {
		tb.Fatalf("push control message type %d: %v", m.Type, err)
	}
}

// TestWaitOutlastsFanOut: the fan-out of a stream with many players waits
// to coalesce packets; once the publication has ended, Wait returns only
// when that goroutine has finished, so a closed hub leaves none behind.
func TestWaitOutlastsFanOut(t *testing.T) {
	h := New()
	pub, _, err := h.Publish("live", "k", "id", &fakePublisher{id: 1}, opts())
	if err != nil {
		t.Fatal(err)
	}
	players := int(MaxCoalesce / CoalescePerPlayer) // the longest coalescing delay
	for i := range players {
		p := NewPlayer(uint64(i+2), "k", NewQueue(nil), &events{})
		if _, err := h.Play("live", p); err != nil {
			t.Fatal(err)
		}
	}
	pub.Write(message.TypeVideo, 0, key(1), false) // starts the fan-out, which waits MaxCoalesce
	h.Unpublish(pub)                               // delivers the packet itself
	h.Close()
	h.Wait()
	s := pub.stream
	s.mu.Lock()
	fanning := s.fanning
	s.mu.Unlock()
	if fanning {
		t.Fatal("Wait returned while the stream's fan-out was still running")
	}
	// The goroutine itself is gone as soon as it has returned from fanOut.
	testpeer.WaitFor(t, "no fan-out goroutine", time.Second, func() bool { return len(testpeer.Goroutines(fanOutFunc)) == 0 })
}

const fanOutFunc = "github.com/rtmp-server/rtmp-server/internal/hub.(*Stream).fanOut"
