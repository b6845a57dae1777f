package hub

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/message"
)

// blockingSocket is a direct writer that, once armed, blocks the write
// that reaches it until released: a write that is slow for any reason.
type blockingSocket struct {
	mu      sync.Mutex
	armed   bool
	entered chan struct{} // closed when the armed write starts
	release chan struct{} // closed to let it finish
}

func newBlockingSocket() *blockingSocket {
	return &blockingSocket{entered: make(chan struct{}), release: make(chan struct{})}
}

func (s *blockingSocket) arm() {
	s.mu.Lock()
	s.armed = true
	s.mu.Unlock()
}

func (s *blockingSocket) write(pkts []*Packet) int {
	s.mu.Lock()
	armed := s.armed
	s.armed = false
	s.mu.Unlock()
	if armed {
		close(s.entered)
		<-s.release
	}
	n := 0
	for _, p := range pkts {
		n += p.Size()
	}
	return n
}

// TestNoWritesUnderHubLock: while Unpublish delivers a stream's last
// packets and one player's socket write is slow, other channels can still
// be played and published, and the stream itself looked up: the hub's and
// the stream's locks are not held across a write to a player.
func TestNoWritesUnderHubLock(t *testing.T) {
	for _, end := range []string{"unpublish", "replace", "play"} {
		t.Run(end, func(t *testing.T) {
			h := New()
			conn := &fakePublisher{id: 1}
			pub := mustPublish(t, h, "big", "k", "s1", conn, opts())
			pub.Write(message.TypeVideo, 0, seqVideo, false)
			pub.Write(message.TypeVideo, 0, key(1), false)
			sock := newBlockingSocket()
			var wg sync.WaitGroup
			defer wg.Wait()
			defer close(sock.release)
			q := NewDirectQueue(func() {}, sock.write)
			if end != "play" {
				mustPlay(t, h, "big", NewPlayer(2, "k", q, &events{}))
				// Armed before the last packet: its write blocks whether the
				// stream's fan-out takes it at once or the end delivers it
				// (armed after, a fast fan-out could have written it already,
				// leaving the end nothing to write).
				sock.arm()
				pub.Write(message.TypeVideo, 33, inter(2), false)
			} else {
				sock.arm()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				switch end {
				case "unpublish":
					h.Unpublish(pub)
				case "replace":
					conn.idle.Store(int64(time.Hour))
					_, _, _ = h.Publish("big", "k", "s2", &fakePublisher{id: 3}, opts())
				case "play":
					_, _ = h.Play("big", NewPlayer(2, "k", q, &events{})) // its GOP is written directly
				}
			}()
			select {
			case <-sock.entered:
			case <-time.After(10 * time.Second):
				t.Fatal("the write to the player never started")
			}
			done := make(chan error, 1)
			go func() {
				other := &fakePublisher{id: 10}
				opub, _, err := h.Publish("other", "k", "s3", other, opts())
				if err != nil {
					done <- err
					return
				}
				if _, err := h.Play("other", NewPlayer(11, "k", NewQueue(nil), &events{})); err != nil {
					done <- err
					return
				}
				h.Unpublish(opub)
				h.Lookup("big")
				_ = h.StreamStats()
				done <- nil
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: another channel's publish and play waited for a write to a player of this one", end)
			}
		})
	}
}

// BenchmarkPlayOtherChannel measures how long a play (and its stop) of a
// small channel takes while a 1000-player stream starts and ends again and
// again, each end delivering its last packets to every player, against the
// same with the big stream idle. Each direct write costs about what a
// loopback writev does (a few µs). Reported: p50 and p99 of one Play +
// StopPlaying, in µs.
func BenchmarkPlayOtherChannel(b *testing.B) {
	for _, churn := range []bool{false, true} {
		b.Run(fmt.Sprintf("churn=%v", churn), func(b *testing.B) {
			h := New()
			for i := range 1000 {
				q := NewDirectQueue(func() {}, func(pkts []*Packet) int {
					spin(benchSpin)
					n := 0
					for _, p := range pkts {
						n += p.Size()
					}
					return n
				})
				mustPlay(b, h, "big", NewPlayer(uint64(100+i), "k", q, &events{}))
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			if churn {
				wg.Add(1)
				go func() {
					defer wg.Done()
					frame := make([]byte, 4000)
					frame[0], frame[1] = 0x27, 1
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						pub, _, err := h.Publish("big", "k", "s", &fakePublisher{id: 1}, opts())
						if err != nil {
							b.Error(err)
							return
						}
						pub.Write(message.TypeVideo, 0, seqVideo, false)
						pub.Write(message.TypeVideo, 0, key(1), false)
						pub.Write(message.TypeVideo, 33, frame, false)
						h.Unpublish(pub)
					}
				}()
			}
			var took []time.Duration
			for i := 0; b.Loop(); i++ {
				p := NewPlayer(uint64(5000+i), "k", NewQueue(nil), &events{})
				start := time.Now()
				if _, err := h.Play("small", p); err != nil {
					b.Fatal(err)
				}
				h.StopPlaying(p)
				took = append(took, time.Since(start))
				time.Sleep(100 * time.Microsecond) // a play now and then, not a flood
			}
			close(stop)
			wg.Wait()
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// spin busies the CPU for d, as a system call would.
func spin(d time.Duration) {
	for start := time.Now(); time.Since(start) < d; {
	}
}

// benchSpin is what one direct write costs in BenchmarkPlayOtherChannel:
// about a loopback writev of a few KB.
const benchSpin = 5 * time.Microsecond
