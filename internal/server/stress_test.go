package server

// A bounded soak test: real ffmpeg publishers and players, hundreds of the
// project's own clients that play, publish and vanish in the middle of a
// chunk, clients that send garbage after the handshake, publishers killed
// with SIGKILL and players that stop reading, all at once. Afterwards the
// server must be back where it started.

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/amf"
	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/client"
	"github.com/rtmp-server/rtmp-server/internal/message"
	"github.com/rtmp-server/rtmp-server/internal/servertest"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// stressSeed replays the random choices of an earlier run (its seed is
// logged); 0 picks a new seed.
var stressSeed = flag.Uint64("stress.seed", 0, "random seed of TestStress (0: a new one); a failed run prints its seed")

const (
	// stressChaos is how long the mixed load runs.
	stressChaos = 12 * time.Second
	// stressClients is how many sessions of the project's client the mixed
	// load starts, spread over stressChaos.
	stressClients = 300
	// stressWorkers bounds how many of them run at once.
	stressWorkers = 24
	// stressStalled is how many players stop reading a fast stream.
	stressStalled = 8
	// stressWriteTimeout is the server's WriteTimeout in the test, so that
	// stalled players are dropped within the run.
	stressWriteTimeout = 2 * time.Second
	// stressPeerTimeout bounds one client session's I/O.
	stressPeerTimeout = 20 * time.Second
	// stressHeapSlack is how far above its baseline the heap may stay.
	stressHeapSlack = 16 << 20
	// stressLogTail is how much of the server log is kept for failure reports.
	stressLogTail = 256 << 10
)

// stressLog receives the server log: it counts the lines the test looks
// for and keeps only the tail, so the log does not grow the heap it measures.
type stressLog struct {
	mu    sync.Mutex
	tail  []byte // guarded by mu
	lines int    // guarded by mu
	slow  int    // guarded by mu: players dropped for not reading (PlayerDropped)
}

// observe counts the players dropped for not reading.
func (l *stressLog) observe(ev Event) {
	if ev.Kind == PlayerDropped {
		l.mu.Lock()
		l.slow++
		l.mu.Unlock()
	}
}

func (l *stressLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines++
	l.tail = append(l.tail, p...)
	if over := len(l.tail) - stressLogTail; over > 0 {
		l.tail = append(l.tail[:0], l.tail[over:]...)
	}
	return len(p), nil
}

func (l *stressLog) counts() (lines, slow int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lines, l.slow
}

func (l *stressLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.tail)
}

// openFDs counts the process's open file descriptors.
func openFDs(t testing.TB) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors: %v", err)
	}
	return len(entries)
}

// peakRSS returns VmHWM from /proc/self/status.
func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// stressServer is the server under load and what the test watches of it.
type stressServer struct {
	*Server
	addr string
	log  *stressLog
	auth *recordingAuthorizer
}

func (s *stressServer) url(channel, key string) string {
	return fmt.Sprintf("rtmp://%s/%s/%s", s.addr, channel, key)
}

func (s *stressServer) connCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// waitPublished waits until channel has a publisher other than old (a
// session id, 0 for none), failing if p exits first.
func (s *stressServer) waitPublished(t *testing.T, channel string, old uint64, p *testpeer.Process) {
	t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if pub := s.Hub().Lookup(channel); pub != nil && pub.SessionID() != old {
			return
		}
		select {
		case <-p.Done():
			t.Fatalf("publisher of %q exited: %v\n%s", channel, p.Err(), p.Stderr.String())
		case <-deadline.C:
			t.Fatalf("no publication on %q; publisher stderr:\n%s", channel, p.Stderr.String())
		case <-tick.C:
		}
	}
}

func startStressServer(t *testing.T) *stressServer {
	cfg := DefaultOptions()
	cfg.MaxIPConnections = 0 // every client comes from 127.0.0.1
	logs := &stressLog{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	srv := mustNew(t, cfg, logger)
	srv.Observer = Observers(RequestLog(logger, nil), logs.observe)
	srv.WriteTimeout = stressWriteTimeout
	auth := newRecordingAuthorizer()
	srv.SetAuthorizer(auth)
	// Registered before Start, so it runs after the shutdown.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log (tail):\n%s", logs.String())
		}
	})
	addr := servertest.Start(t, srv, ErrServerClosed)
	return &stressServer{Server: srv, addr: addr, log: logs, auth: auth}
}

// stressDial connects and runs connect and createStream.
func stressDial(addr, channel string) (*client.Conn, error) {
	c, err := client.Dial(addr, nil, stressPeerTimeout)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	_ = c.SetDeadline(time.Now().Add(stressPeerTimeout))
	if err := c.Connect(channel); err != nil {
		c.Close()
		return nil, fmt.Errorf("connect %s: %w", channel, err)
	}
	if _, err := c.CreateStream(); err != nil {
		c.Close()
		return nil, fmt.Errorf("createStream: %w", err)
	}
	return c, nil
}

// stressPlay connects and plays channel/key, which must start.
func stressPlay(addr, channel, key string) (*client.Conn, error) {
	c, err := stressDial(addr, channel)
	if err != nil {
		return nil, err
	}
	if st, err := c.Play(key); err != nil || st.Code != "NetStream.Play.Start" {
		c.Close()
		return nil, fmt.Errorf("play %s/%s: %v %v", channel, key, st, err)
	}
	return c, nil
}

// vanishMidChunk writes m up to a cut inside one of its chunks and closes
// the connection: the peer is gone in the middle of a message.
func vanishMidChunk(c *client.Conn, m *chunk.Message, rng *rand.Rand) {
	b := chunk.AppendMessage(nil, m, chunk.DefaultChunkSize)
	cut := 1 + rng.IntN(len(b)-1)
	_ = c.NetConn().SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.NetConn().Write(b[:cut])
	_ = c.Close()
}

// bigCommand is a command message spanning several chunks.
func bigCommand(streamID uint32) *chunk.Message {
	p := mustAMF0("noSuchMethod", 0.0, nil, strings.Repeat("x", 900))
	return &chunk.Message{ChunkStreamID: 3, Type: message.TypeCommandAMF0, StreamID: streamID, Payload: p}
}

// readSome reads up to n messages or until d passes; errors end it early.
func readSome(c *client.Conn, n int, d time.Duration) int {
	_ = c.NetConn().SetReadDeadline(time.Now().Add(d))
	got := 0
	for got < n {
		if _, err := c.ReadMessage(); err != nil {
			break
		}
		got++
	}
	return got
}

// stressCounters counts what the mixed load did.
type stressCounters struct {
	steadyPlayers, victimPlayers, ownPublishers, garbage, halfConnects, cleanLeaves atomic.Int64
	messagesRead                                                                    atomic.Int64
}

// stressLoad is one session of the mixed load. It returns only errors that
// mean the server misbehaved; the session's own rudeness is expected.
func stressLoad(addr string, i int, rng *rand.Rand, n *stressCounters) error {
	switch i % 6 {
	case 0: // play the steady stream, then vanish mid-chunk
		c, err := stressPlay(addr, "steady", "sk")
		if err != nil {
			return err
		}
		n.steadyPlayers.Add(1)
		n.messagesRead.Add(int64(readSome(c, 1+rng.IntN(60), 3*time.Second)))
		vanishMidChunk(c, bigCommand(c.StreamID()), rng)
	case 1: // play the stream whose publisher keeps being killed
		c, err := stressPlay(addr, "victim", "vk")
		if err != nil {
			return err
		}
		n.victimPlayers.Add(1)
		n.messagesRead.Add(int64(readSome(c, 1+rng.IntN(60), time.Second)))
		vanishMidChunk(c, bigCommand(c.StreamID()), rng)
	case 2: // publish with a player watching, then vanish mid-frame
		return stressOwnPublisher(addr, i, rng, n)
	case 3: // random bytes after a valid handshake
		c, err := client.Dial(addr, nil, stressPeerTimeout)
		if err != nil {
			return fmt.Errorf("dial: %w", err)
		}
		n.garbage.Add(1)
		junk := make([]byte, 1+rng.IntN(8<<10))
		for j := range junk {
			junk[j] = byte(rng.Uint32())
		}
		_ = c.NetConn().SetDeadline(time.Now().Add(3 * time.Second))
		_, _ = c.NetConn().Write(junk)
		if rng.IntN(2) == 0 {
			readSome(c, 1<<20, 3*time.Second) // until the server gives up on it
		}
		c.Close()
	case 4: // vanish in the middle of the connect command
		c, err := client.Dial(addr, nil, stressPeerTimeout)
		if err != nil {
			return fmt.Errorf("dial: %w", err)
		}
		n.halfConnects.Add(1)
		connect := &chunk.Message{ChunkStreamID: 3, Type: message.TypeCommandAMF0,
			Payload: mustAMF0("connect", 1.0, amf.Object{{Key: "app", Value: "steady"}, {Key: "tcUrl", Value: strings.Repeat("t", 400)}})}
		vanishMidChunk(c, connect, rng)
	case 5: // play, then leave politely
		c, err := stressPlay(addr, "steady", "sk")
		if err != nil {
			return err
		}
		n.cleanLeaves.Add(1)
		n.messagesRead.Add(int64(readSome(c, 1+rng.IntN(30), 3*time.Second)))
		_ = c.SetDeadline(time.Now().Add(stressPeerTimeout))
		if _, err := c.Call(c.StreamID(), "deleteStream", nil, float64(c.StreamID())); err != nil {
			c.Close()
			return fmt.Errorf("deleteStream: %w", err)
		}
		for {
			st, err := c.WaitStatus()
			if err != nil {
				c.Close()
				return fmt.Errorf("waiting for Play.Stop: %w", err)
			}
			if st.Code == "NetStream.Play.Stop" {
				break
			}
		}
		c.Close()
	}
	return nil
}

// stressOwnPublisher publishes a stream of its own with one player, then
// vanishes in the middle of a video message; the player must be told the
// stream was unpublished.
func stressOwnPublisher(addr string, i int, rng *rand.Rand, n *stressCounters) error {
	channel, key := "own"+strconv.Itoa(i), "key"+strconv.Itoa(i)
	pub, err := stressDial(addr, channel)
	if err != nil {
		return err
	}
	defer pub.Close()
	if st, err := pub.Publish(key); err != nil || st.Code != "NetStream.Publish.Start" {
		return fmt.Errorf("publish %s: %v %v", channel, st, err)
	}
	n.ownPublishers.Add(1)
	player, err := stressPlay(addr, channel, key)
	if err != nil {
		return err
	}
	defer player.Close()
	frames := [][]byte{videoHeader, audioHeader, keyframe(1), audioFrame(2), interFrame(3)}
	for j, f := range frames {
		typ := message.TypeVideo
		if f[0] == 0xAF {
			typ = message.TypeAudio
		}
		if err := pub.WriteMedia(typ, uint32(j*20), f); err != nil {
			return fmt.Errorf("publisher %s: %w", channel, err)
		}
	}
	if got := readMediaUntil(player, 3, stressPeerTimeout); got < 3 {
		return fmt.Errorf("player of %s got %d media messages, want 3", channel, got)
	}
	frame := append(keyframe(4), bytes.Repeat([]byte{0x42}, 1500)...)
	vanishMidChunk(pub, &chunk.Message{ChunkStreamID: 6, Type: message.TypeVideo, StreamID: pub.StreamID(), Timestamp: 200, Payload: frame}, rng)
	_ = player.SetDeadline(time.Now().Add(stressPeerTimeout))
	for {
		st, err := player.WaitStatus()
		if err != nil {
			return fmt.Errorf("player of %s after the publisher vanished: %w", channel, err)
		}
		if st.Code == "NetStream.Play.UnpublishNotify" {
			break
		}
	}
	vanishMidChunk(player, bigCommand(player.StreamID()), rng)
	return nil
}

// readMediaUntil reads until n media messages arrived or d passed.
func readMediaUntil(c *client.Conn, n int, d time.Duration) int {
	_ = c.NetConn().SetReadDeadline(time.Now().Add(d))
	got := 0
	for _, m := range c.Pending {
		if isStreamData(m) {
			got++
		}
	}
	c.Pending = nil
	for got < n {
		m, err := c.ReadMessage()
		if err != nil {
			break
		}
		if isStreamData(m) {
			got++
		}
	}
	return got
}

// firehose publishes large keyframes quickly until ctx ends, so that
// players that stop reading fill their sockets.
func firehose(ctx context.Context, addr string, ready chan<- struct{}) error {
	c, err := stressDial(addr, "firehose")
	if err != nil {
		close(ready)
		return err
	}
	defer c.Close()
	if st, err := c.Publish("fk"); err != nil || st.Code != "NetStream.Publish.Start" {
		close(ready)
		return fmt.Errorf("firehose publish: %v %v", st, err)
	}
	close(ready)
	_ = c.SetDeadline(time.Time{})
	frame := append(keyframe(0), bytes.Repeat([]byte{0x5A}, 32<<10)...)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for ts := uint32(0); ; ts += 20 {
		select {
		case <-ctx.Done():
			_, err := c.Call(c.StreamID(), "deleteStream", nil, float64(c.StreamID()))
			return err
		case <-tick.C:
		}
		_ = c.NetConn().SetWriteDeadline(time.Now().Add(stressPeerTimeout))
		if err := c.WriteMedia(message.TypeVideo, ts, frame); err != nil {
			return fmt.Errorf("firehose: %w", err)
		}
	}
}

// TestStress runs the mixed load described at the top of the file, then
// checks that the server is back to its baseline: goroutines, file
// descriptors, heap, no connection left, every approved publish stopped
// exactly once, no panic recovered, and that an ffmpeg player decoded a
// stream that ran through it all without a single error.
func TestStress(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test; skipped with -short")
	}
	testpeer.Need(t, "ffmpeg")
	start := time.Now()
	seed := *stressSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("random seed %d", seed)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("to replay this run's random choices: go test ./internal/server -run 'TestStress$' -stress.seed=%d", seed)
		}
	})
	panicsBefore := recoveredPanics.Load()
	rng := rand.New(rand.NewPCG(seed, 0))
	srv := startStressServer(t)

	// Warm up once so the accept loop runs, then take the baselines.
	warm, err := stressDial(srv.addr, "warmup")
	if err != nil {
		t.Fatal(err)
	}
	warm.Close()
	waitFor(t, "warm-up connection gone", 10*time.Second, func() bool { return srv.connCount() == 0 })
	baseGoroutines, baseFDs, baseHeap := runtime.NumGoroutine(), openFDs(t), heapAfterGC()

	// A steady ffmpeg publisher, and an ffmpeg player that decodes it for
	// the whole chaos window and some margin.
	steady := publishFFmpeg(t, srv.url("steady", "sk"))
	srv.waitPublished(t, "steady", 0, steady)
	const fps = 25
	wantFrames := int((stressChaos + 10*time.Second).Seconds()) * fps
	decoder := testpeer.StartProcess(t, peerLimit, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-rw_timeout", "20000000",
		"-i", srv.url("steady", "sk"), "-map", "0:v", "-frames:v", strconv.Itoa(wantFrames), "-f", "framecrc", "-")
	waitFor(t, "ffmpeg player playing", 30*time.Second, func() bool { return srv.Hub().Stats().Players >= 1 })
	chaosEnd := time.Now().Add(stressChaos)

	// Sessions report errors that mean the server misbehaved here.
	var errMu sync.Mutex
	var loadErrs []error
	report := func(err error) {
		if err != nil {
			errMu.Lock()
			loadErrs = append(loadErrs, err)
			errMu.Unlock()
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var fireWG, loadWG sync.WaitGroup
	t.Cleanup(func() { // runs before the server shuts down
		cancel()
		fireWG.Wait()
		loadWG.Wait()
	})

	// The firehose, and players that stop reading it.
	ready := make(chan struct{})
	fireWG.Add(1)
	go func() {
		defer fireWG.Done()
		report(firehose(ctx, srv.addr, ready))
	}()
	<-ready
	var stalled []*client.Conn
	t.Cleanup(func() {
		for _, c := range stalled {
			c.Close()
		}
	})
	for range stressStalled {
		c, err := stressPlay(srv.addr, "firehose", "fk")
		if err != nil {
			t.Fatal(err)
		}
		stalled = append(stalled, c) // never read again
	}

	// The mixed load: stressClients sessions spread over the chaos window.
	var counters stressCounters
	jobs := make(chan int)
	for w := range stressWorkers {
		loadWG.Add(1)
		go func() {
			defer loadWG.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w+1)))
			for i := range jobs {
				report(stressLoad(srv.addr, i, rng, &counters))
			}
		}()
	}
	loadWG.Add(1)
	go func() {
		defer loadWG.Done()
		defer close(jobs)
		tick := time.NewTicker(stressChaos / stressClients)
		defer tick.Stop()
		for i := range stressClients {
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
		}
	}()

	// Meanwhile a second ffmpeg publisher is killed with SIGKILL and comes
	// back, again and again, with an ffmpeg player on its stream.
	victimPlayer := testpeer.StartProcess(t, peerLimit, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-rw_timeout", "20000000",
		"-i", srv.url("victim", "vk"), "-f", "null", "-")
	kills := 0
	var lastVictim uint64
	for kills == 0 || time.Now().Before(chaosEnd) {
		victim := publishFFmpeg(t, srv.url("victim", "vk"))
		srv.waitPublished(t, "victim", lastVictim, victim)
		lastVictim = srv.Hub().Lookup("victim").SessionID()
		pace := time.NewTimer(time.Duration(500+rng.IntN(1500)) * time.Millisecond) // let it stream a while
		<-pace.C
		if err := victim.Cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-victim.Done()
		kills++
		waitFor(t, "killed publisher unpublished", 15*time.Second, func() bool {
			p := srv.Hub().Lookup("victim")
			return p == nil || p.SessionID() != lastVictim
		})
	}
	select {
	case <-decoder.Done():
		t.Errorf("the ffmpeg player of the steady stream ended before the chaos did: %v\n%s", decoder.Err(), decoder.Stderr.String())
	default:
	}
	victimPlayer.Kill()

	// Wind down: the stalled players have been dropped, the mixed load
	// finishes, the firehose stops.
	waitFor(t, "players that stopped reading dropped", 30*time.Second, func() bool {
		_, slow := srv.log.counts()
		return slow >= stressStalled
	})
	loadWG.Wait()
	cancel()
	fireWG.Wait()
	for _, c := range stalled {
		c.Close()
	}
	errMu.Lock()
	for i, err := range loadErrs {
		if i == 10 {
			t.Errorf("... and %d more", len(loadErrs)-10)
			break
		}
		t.Errorf("load: %v", err)
	}
	errMu.Unlock()

	// The ffmpeg player decoded the steady stream through it all.
	if err := decoder.Wait(t, 90*time.Second); err != nil {
		t.Fatalf("ffmpeg player of the steady stream: %v\n%s", err, decoder.Stderr.String())
	}
	if s := strings.TrimSpace(decoder.Stderr.String()); s != "" {
		t.Fatalf("decoder reported errors:\n%s", s)
	}
	frames := strings.Count(decoder.Stdout.String(), "\n0,")
	if frames < wantFrames {
		t.Fatalf("decoded %d frames of the steady stream, want %d", frames, wantFrames)
	}
	steady.Stop()
	hubStats := srv.Hub().Stats()

	// Back to the baseline.
	waitFor(t, "every connection closed", 30*time.Second, func() bool { return srv.connCount() == 0 })
	if st := srv.Hub().Stats(); st.Streams != 0 || st.Publishers != 0 || st.Players != 0 {
		t.Errorf("hub not empty after every connection closed: %+v", st)
	}
	if err := srv.auth.check(); err != nil {
		t.Error(err)
	}
	starts, stops, refused := srv.auth.counts()
	goroutines := waitAtMost(t, "goroutines", baseGoroutines, runtime.NumGoroutine)
	fds := waitAtMost(t, "open file descriptors", baseFDs, func() int { return openFDs(t) })
	heap := heapAfterGC()
	if heap > baseHeap+stressHeapSlack {
		t.Errorf("heap %d KiB after the load, %d KiB before", heap>>10, baseHeap>>10)
	}
	lines, slow := srv.log.counts()
	if n := recoveredPanics.Load() - panicsBefore; n > 0 {
		t.Errorf("%d panics recovered at the connection boundary", n)
	}

	t.Logf("connections accepted: %d; ffmpeg publishers killed with SIGKILL: %d", srv.nextID.Load(), kills)
	t.Logf("client sessions: %d steady players, %d victim players, %d own publishers (each with a player), %d garbage senders, %d half connects, %d clean leaves; %d messages read",
		counters.steadyPlayers.Load(), counters.victimPlayers.Load(), counters.ownPublishers.Load(), counters.garbage.Load(),
		counters.halfConnects.Load(), counters.cleanLeaves.Load(), counters.messagesRead.Load())
	t.Logf("players dropped for not reading: %d (%d stalled); publish starts %d, stops %d, refused %d", slow, stressStalled, starts, stops, refused)
	t.Logf("hub: %d bytes in, %d bytes out; ffmpeg decoded %d frames of the steady stream", hubStats.BytesIn, hubStats.BytesOut, frames)
	t.Logf("goroutines %d before, %d after; fds %d before, %d after; heap %d KiB before, %d KiB after; peak RSS %s; %d log lines; %v",
		baseGoroutines, goroutines, baseFDs, fds, baseHeap>>10, heap>>10, peakRSS(), lines, time.Since(start).Round(time.Millisecond))
}

// waitAtMost waits until value() is at most want and returns the last
// value; past the deadline it reports an error.
func waitAtMost(t *testing.T, what string, want int, value func() int) int {
	t.Helper()
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		v := value()
		if v <= want {
			return v
		}
		select {
		case <-deadline.C:
			t.Errorf("%d %s after the load, %d before:\n%s", v, what, want, goroutineDump())
			return v
		case <-tick.C:
		}
	}
}
