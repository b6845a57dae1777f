package server

// Fuzz targets for whole connections: what a peer sends after a valid
// handshake runs through a real conn (read loop, commands, publisher and
// player roles, writer) over an in-memory pipe, one fresh Server per input.
//
// The seed corpora are committed under testdata/fuzz. Crafted seeds are
// written by TestFuzzSeedCorpus -update-fuzz-corpus; the recordings of real
// ffmpeg traffic by TestRecordFFmpegSeeds -record-ffmpeg.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/amf"
	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/handshake"
	"github.com/rtmp-server/rtmp-server/internal/message"
)

var (
	updateFuzzCorpus = flag.Bool("update-fuzz-corpus", false, "rewrite the crafted seeds of FuzzConnection and FuzzCommand under testdata/fuzz")
	recordFFmpeg     = flag.Bool("record-ffmpeg", false, "record what ffmpeg sends after the handshake into the FuzzConnection seed corpus")
)

const (
	// fuzzConnTimeout bounds how long one fuzzed connection may take to end
	// after its peer closed; every input must end far sooner.
	fuzzConnTimeout = 10 * time.Second
	// maxRecordedSeed is how much of a recorded ffmpeg stream is kept as a seed.
	maxRecordedSeed = 64 << 10
	// fuzzChannel and fuzzKey are what the crafted seeds connect to and publish.
	fuzzChannel = "live"
	fuzzKey     = "k"
)

// fuzzClientAddr is the address fuzzed connections report as their peer's;
// nothing listens on it or dials it.
var fuzzClientAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}

// pipeConn is the server's end of a net.Pipe, reporting a loopback client
// address as an accepted TCP connection would.
type pipeConn struct{ net.Conn }

func (pipeConn) RemoteAddr() net.Addr { return fuzzClientAddr }

// simpleHandshake is C0, a simple-form C1 (version 0) and a C2 that the
// server accepts without looking at S1.
var simpleHandshake = func() []byte {
	b := make([]byte, 1+2*handshake.Size)
	b[0] = handshake.Version
	for i := 9; i < len(b); i++ {
		b[i] = byte(i * 7)
	}
	return b
}()

// recordingAuthorizer approves every publish whose key does not start with
// "deny", with a unique stream id, and records the stop events.
type recordingAuthorizer struct {
	mu      sync.Mutex
	next    int            // guarded by mu
	stops   map[string]int // guarded by mu: stop events per approved stream id
	strays  []string       // guarded by mu: stops for ids never approved
	refused int            // guarded by mu
}

func newRecordingAuthorizer() *recordingAuthorizer {
	return &recordingAuthorizer{stops: make(map[string]int)}
}

func (a *recordingAuthorizer) Start(ctx context.Context, ev PublishEvent) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if strings.HasPrefix(ev.Key, "deny") {
		a.refused++
		return "", errors.New("test authorizer: refused")
	}
	a.next++
	id := fmt.Sprintf("stream-%d-%d", ev.Session, a.next)
	a.stops[id] = 0
	return id, nil
}

func (a *recordingAuthorizer) Stop(ev PublishEvent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.stops[ev.StreamID]; !ok {
		a.strays = append(a.strays, ev.StreamID)
		return
	}
	a.stops[ev.StreamID]++
}

// counts reports the approved starts, the stops, and the refusals.
func (a *recordingAuthorizer) counts() (starts, stops, refused int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, n := range a.stops {
		stops += n
	}
	return len(a.stops), stops, a.refused
}

// check reports an approved start without exactly one stop, or a stop of
// an id never approved.
func (a *recordingAuthorizer) check() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var bad []string
	for id, n := range a.stops {
		if n != 1 {
			bad = append(bad, fmt.Sprintf("%s: %d stops", id, n))
		}
	}
	for _, id := range a.strays {
		bad = append(bad, fmt.Sprintf("stop for %q, which was never approved", id))
	}
	if len(bad) > 0 {
		return fmt.Errorf("stop events do not match approved starts: %s", strings.Join(bad, "; "))
	}
	return nil
}

// goroutineDump returns the stacks of all goroutines, for failure messages.
func goroutineDump() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// waitGoroutines waits until at most want goroutines run.
func waitGoroutines(t testing.TB, want int, timeout time.Duration) {
	t.Helper()
	if runtime.NumGoroutine() <= want {
		return
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for runtime.NumGoroutine() > want {
		select {
		case <-deadline.C:
			t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), want, goroutineDump())
		case <-tick.C:
		}
	}
}

// checkServerOutput reads what the server sends on a fuzzed connection:
// S0+S1+S2, then a chunk stream whose command messages must all decode. It
// reads until the pipe closes, so the server's writer never blocks on it,
// and returns the first malformed thing it saw.
func checkServerOutput(r io.Reader) error {
	br := bufio.NewReader(r)
	if _, err := io.ReadFull(br, make([]byte, 1+2*handshake.Size)); err != nil {
		return nil // the server may end the connection at any point
	}
	cr := chunk.NewReader(br)
	var bad error
	for {
		m, err := cr.ReadMessage()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.ErrClosedPipe) {
				bad = fmt.Errorf("server sent a malformed chunk stream: %w", err)
			}
			break
		}
		if m.Type != message.TypeCommandAMF0 {
			continue
		}
		vals, err := amf.DecodeAMF0All(m.Payload)
		if err != nil {
			bad = fmt.Errorf("server sent an undecodable command % x: %w", m.Payload, err)
			break
		}
		if len(vals) < 2 {
			bad = fmt.Errorf("server sent a command of %d values: %#v", len(vals), vals)
			break
		}
		if _, ok := vals[0].(string); !ok {
			bad = fmt.Errorf("server sent a command named %#v", vals[0])
			break
		}
	}
	_, _ = io.Copy(io.Discard, br)
	return bad
}

// runFuzzedConnection runs one connection whose peer completes the
// handshake, sends input and closes, and checks that the server survives
// it: no panic recovered, the connection ends, the server's and the hub's
// state is empty again, every approved publish was stopped once, nothing
// the server sent is malformed, and no goroutine is left behind.
func runFuzzedConnection(t *testing.T, input []byte) {
	baseline := runtime.NumGoroutine()
	panicsBefore := recoveredPanics.Load()
	cfg := DefaultOptions()
	logs := &syncBuffer{}
	srv := mustNew(t, cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	auth := newRecordingAuthorizer()
	srv.SetAuthorizer(auth)

	serverEnd, clientEnd := net.Pipe()
	if !srv.track(pipeConn{serverEnd}) {
		t.Fatal("server refused the connection")
	}
	output := make(chan error, 1)
	go func() { output <- checkServerOutput(clientEnd) }()
	_ = clientEnd.SetWriteDeadline(time.Now().Add(fuzzConnTimeout))
	_, werr := clientEnd.Write(append(bytes.Clone(simpleHandshake), input...))
	_ = clientEnd.Close()

	ended := make(chan struct{})
	go func() {
		srv.connWG.Wait()
		close(ended)
	}()
	timer := time.NewTimer(fuzzConnTimeout)
	defer timer.Stop()
	select {
	case <-ended:
	case <-timer.C:
		t.Fatalf("connection still open %v after the peer closed (write: %v); goroutines:\n%s\nlog:\n%s",
			fuzzConnTimeout, werr, goroutineDump(), logs.String())
	}
	if err := <-output; err != nil {
		t.Fatalf("%v\nlog:\n%s", err, logs.String())
	}
	if n := recoveredPanics.Load() - panicsBefore; n != 0 {
		t.Fatalf("%d panics recovered at the connection boundary:\n%s", n, logs.String())
	}
	if st := srv.Hub().Stats(); st.Streams != 0 || st.Publishers != 0 || st.Players != 0 {
		t.Fatalf("hub not empty after the connection ended: %+v\nlog:\n%s", st, logs.String())
	}
	srv.mu.Lock()
	conns, pending := len(srv.conns), srv.pending.Len()
	srv.mu.Unlock()
	if conns != 0 || pending != 0 {
		t.Fatalf("server still tracks %d connections, %d pending", conns, pending)
	}
	if n := srv.limiter.Count(netip.MustParseAddr("127.0.0.1")); n != 0 {
		t.Fatalf("per-IP limiter still counts %d connections", n)
	}
	if err := auth.check(); err != nil {
		t.Fatalf("%v\nlog:\n%s", err, logs.String())
	}
	waitGoroutines(t, baseline, 5*time.Second)
}

// FuzzConnection feeds arbitrary bytes as the chunk stream of a connection
// after a valid handshake.
func FuzzConnection(f *testing.F) {
	f.Fuzz(func(t *testing.T, input []byte) {
		runFuzzedConnection(t, input)
	})
}

// FuzzCommand dispatches two arbitrary command bodies (AMF0, or AMF3
// messages whose body is AMF0 after the format byte) on a connection that
// setup has brought to a given state, followed by what setup asks for.
//
// setup bits 0-2: 0 nothing before, 1 connect, 2 connect and createStream,
// 3 ... and publish, 4 ... and play (waiting), 5 ... play then publish the
// same key (the connection plays its own stream), 6 ... a refused publish,
// 7 connect twice and two createStreams. Bit 3 sends the fuzzed commands as
// AMF3 command messages (type 17); bit 4 on message stream 1 instead of 0.
// Bit 5 follows them with metadata, codec headers and frames; bit 6 with
// deleteStream(1); bit 7 with pause, receiveVideo and closeStream.
func FuzzCommand(f *testing.F) {
	f.Fuzz(func(t *testing.T, setup uint8, first, second []byte) {
		runFuzzedConnection(t, commandStream(setup, first, second))
	})
}

// seedWriter builds the chunk stream a client sends.
type seedWriter struct {
	b         []byte
	chunkSize uint32
}

func newSeedWriter() *seedWriter { return &seedWriter{chunkSize: chunk.DefaultChunkSize} }

func (w *seedWriter) message(csid uint32, typ uint8, streamID, ts uint32, payload []byte) *seedWriter {
	w.b = chunk.AppendMessage(w.b, &chunk.Message{ChunkStreamID: csid, Type: typ, StreamID: streamID, Timestamp: ts, Payload: payload}, w.chunkSize)
	return w
}

func (w *seedWriter) raw(b ...byte) *seedWriter {
	w.b = append(w.b, b...)
	return w
}

func mustAMF0(values ...any) []byte {
	b, err := amf.AppendAMF0All(nil, values...)
	if err != nil {
		panic(err)
	}
	return b
}

func (w *seedWriter) command(streamID uint32, values ...any) *seedWriter {
	return w.message(3, message.TypeCommandAMF0, streamID, 0, mustAMF0(values...))
}

func (w *seedWriter) command3(streamID uint32, values ...any) *seedWriter {
	return w.message(3, message.TypeCommandAMF3, streamID, 0, append([]byte{0}, mustAMF0(values...)...))
}

func (w *seedWriter) setChunkSize(n uint32) *seedWriter {
	w.message(2, message.TypeSetChunkSize, 0, 0, binary.BigEndian.AppendUint32(nil, n))
	w.chunkSize = n
	return w
}

func (w *seedWriter) connect(app string) *seedWriter {
	return w.command(0, "connect", 1.0, amf.Object{
		{Key: "app", Value: app}, {Key: "type", Value: "nonprivate"},
		{Key: "flashVer", Value: "FMLE/3.0"}, {Key: "tcUrl", Value: "rtmp://127.0.0.1/" + app},
	})
}

func (w *seedWriter) createStream() *seedWriter { return w.command(0, "createStream", 2.0, nil) }

func (w *seedWriter) publish(key string) *seedWriter {
	return w.command(1, "publish", 3.0, nil, key, "live")
}

func (w *seedWriter) play(name string) *seedWriter { return w.command(1, "play", 4.0, nil, name) }

// media sends metadata, codec headers, a keyframe, an inter frame and audio
// on message stream 1.
func (w *seedWriter) media(ts uint32) *seedWriter {
	w.message(5, message.TypeDataAMF0, 1, ts, mustAMF0("@setDataFrame", "onMetaData", amf.ECMAArray{{Key: "width", Value: 320.0}}))
	w.message(6, message.TypeVideo, 1, ts, videoHeader)
	w.message(4, message.TypeAudio, 1, ts, audioHeader)
	w.message(6, message.TypeVideo, 1, ts, append(keyframe(1), bytes.Repeat([]byte{0x55}, 300)...))
	w.message(4, message.TypeAudio, 1, ts+10, audioFrame(2))
	w.message(6, message.TypeVideo, 1, ts+40, interFrame(3))
	return w
}

// chunkHeader appends a chunk header written by hand.
func (w *seedWriter) chunkHeader(format uint8, csid uint32, fields ...byte) *seedWriter {
	switch {
	case csid < 64:
		w.raw(format<<6 | byte(csid))
	case csid < 320:
		w.raw(format<<6, byte(csid-64))
	default:
		w.raw(format<<6|1, byte(csid-64), byte((csid-64)>>8))
	}
	return w.raw(fields...)
}

func type0Fields(ts, length uint32, typ uint8, streamID uint32) []byte {
	b := []byte{byte(ts >> 16), byte(ts >> 8), byte(ts), byte(length >> 16), byte(length >> 8), byte(length), typ}
	return binary.LittleEndian.AppendUint32(b, streamID)
}

// aggregate builds an aggregate message body from sub-messages.
func aggregate(subs ...*chunk.Message) []byte {
	var b []byte
	for _, m := range subs {
		n := len(m.Payload)
		b = append(b, m.Type, byte(n>>16), byte(n>>8), byte(n),
			byte(m.Timestamp>>16), byte(m.Timestamp>>8), byte(m.Timestamp), byte(m.Timestamp>>24), 0, 0, 0)
		b = append(b, m.Payload...)
		b = binary.BigEndian.AppendUint32(b, uint32(message.AggregateHeaderLen+n))
	}
	return b
}

// nested returns an object nested depth levels deep.
func nested(depth int) any {
	var v any = "leaf"
	for i := 0; i < depth; i++ {
		v = amf.Object{{Key: "o", Value: v}}
	}
	return v
}

// nestedBytes is an AMF0 object nested depth levels deep, written by hand
// since the encoder refuses more than amf.MaxDepth.
func nestedBytes(depth int) []byte {
	var b []byte
	for i := 0; i < depth; i++ {
		b = append(b, 0x03, 0, 1, 'o')
	}
	b = append(b, 0x05)
	for i := 0; i < depth; i++ {
		b = append(b, 0, 0, 0x09)
	}
	return b
}

type fuzzSeed struct {
	name string
	data []byte
}

// connectionSeeds are the crafted inputs of FuzzConnection.
func connectionSeeds() []fuzzSeed {
	pubHead := func() *seedWriter { return newSeedWriter().connect(fuzzChannel).createStream().publish(fuzzKey) }
	var seeds []fuzzSeed
	add := func(name string, w *seedWriter) { seeds = append(seeds, fuzzSeed{name, w.b}) }

	add("publish", pubHead().media(0).media(80).command(1, "deleteStream", 5.0, nil, 1.0))
	add("play-waiting", newSeedWriter().connect(fuzzChannel).createStream().play(fuzzKey).
		command(1, "pause", 5.0, nil, true, 0.0).command(1, "pause", 6.0, nil, false, 0.0).
		command(1, "receiveVideo", 0.0, nil, false).command(1, "receiveAudio", 0.0, nil, false).
		command(0, "deleteStream", 7.0, nil, 1.0))
	add("play-own-stream", newSeedWriter().connect(fuzzChannel).createStream().play(fuzzKey+"?cache=clear").
		publish(fuzzKey).media(0).media(2000).command(1, "closeStream", 0.0, nil))
	add("play-then-publish-other-key", newSeedWriter().connect(fuzzChannel).createStream().play("other").
		publish(fuzzKey).media(0))
	add("publish-twice", pubHead().publish(fuzzKey).command(0, "createStream", 4.0, nil).
		command(2, "publish", 5.0, nil, "k2", "live").media(0))
	add("refused-publish", newSeedWriter().connect(fuzzChannel).createStream().publish("deny-me").media(0))
	add("bad-channel", newSeedWriter().connect("bad/channel?x"))
	add("command-before-connect", newSeedWriter().createStream().publish(fuzzKey))
	// A peer may name a command "panic": that is text in the log, not a panic.
	add("command-named-panic", newSeedWriter().command(0, "panic", 1.0, nil).connect(fuzzChannel))

	// Chunk size 1: every byte after a one-byte basic header.
	add("chunk-size-1", newSeedWriter().setChunkSize(1).connect(fuzzChannel).createStream().publish(fuzzKey).media(0))
	add("chunk-size-max", newSeedWriter().setChunkSize(chunk.MaxChunkSize).connect(fuzzChannel).createStream().publish(fuzzKey).media(0))
	add("chunk-size-zero", newSeedWriter().raw(0x02, 0, 0, 0, 0, 0, 4, message.TypeSetChunkSize, 0, 0, 0, 0, 0, 0, 0, 0))
	topBit := newSeedWriter().message(2, message.TypeSetChunkSize, 0, 0, []byte{0x80, 0, 0, 0x10})
	topBit.chunkSize = 0x10 // the top bit is ignored
	add("chunk-size-top-bit", topBit.connect(fuzzChannel).createStream().publish(fuzzKey).media(0))

	// A message claiming the largest length, then too little of it.
	add("huge-message", pubHead().chunkHeader(0, 6, type0Fields(0, chunk.MaxMessageSize, message.TypeVideo, 1)...).
		raw(bytes.Repeat([]byte{0x17}, 128)...).chunkHeader(3, 6).raw(bytes.Repeat([]byte{1}, 128)...))
	// Partial messages on more chunk streams than allowed.
	many := pubHead()
	for csid := uint32(4); csid < 4+chunk.MaxChunkStreams+2; csid++ {
		many.chunkHeader(0, csid, type0Fields(0, 1000, message.TypeAudio, 1)...).raw(bytes.Repeat([]byte{0xAF}, 128)...)
	}
	add("too-many-chunk-streams", many)
	// Two- and three-byte chunk stream IDs, and compressed headers.
	add("wide-chunk-stream-ids", pubHead().
		chunkHeader(0, 300, type0Fields(0, 4, message.TypeAudio, 1)...).raw(audioFrame(1)...).
		chunkHeader(1, 300, 0, 0, 23, 0, 0, 4, message.TypeAudio).raw(audioFrame(2)...).
		chunkHeader(2, 300, 0, 0, 23).raw(audioFrame(3)...).
		chunkHeader(3, 300).raw(audioFrame(4)...).
		chunkHeader(0, chunk.MaxChunkStreamID, type0Fields(0, 4, message.TypeAudio, 1)...).raw(audioFrame(5)...))
	add("compressed-header-first", newSeedWriter().chunkHeader(1, 3, 0, 0, 0, 0, 0, 4, message.TypeCommandAMF0).raw(1, 2, 3, 4))
	add("length-changes-mid-message", pubHead().
		chunkHeader(0, 6, type0Fields(0, 200, message.TypeVideo, 1)...).raw(bytes.Repeat([]byte{0x17}, 128)...).
		chunkHeader(1, 6, 0, 0, 0, 0, 1, 0, message.TypeVideo).raw(1))
	// Extended timestamps, on continuation chunks too, and wrapping.
	add("extended-timestamps", pubHead().
		message(6, message.TypeVideo, 1, 0xFFFFFF, append(keyframe(1), bytes.Repeat([]byte{2}, 300)...)).
		message(6, message.TypeVideo, 1, 0xFFFFFFF0, append(keyframe(2), bytes.Repeat([]byte{3}, 300)...)).
		chunkHeader(2, 6, 0xFF, 0xFF, 0xFF).raw(0, 0, 0x10, 0).raw(interFrame(4)[:7]...))
	// Abort a message half-way, then reuse its chunk stream.
	add("abort", pubHead().
		chunkHeader(0, 6, type0Fields(0, 300, message.TypeVideo, 1)...).raw(bytes.Repeat([]byte{0x17}, 128)...).
		message(2, message.TypeAbort, 0, 0, binary.BigEndian.AppendUint32(nil, 6)).
		chunkHeader(3, 6).raw(interFrame(1)...))
	add("window-ack-and-ping", pubHead().
		message(2, message.TypeWindowAckSize, 0, 0, binary.BigEndian.AppendUint32(nil, 1)).
		message(2, message.TypeUserControl, 0, 0, []byte{0, 6, 0, 0, 0, 42}).
		message(2, message.TypeUserControl, 0, 0, []byte{0, 3, 0, 0, 0, 1, 0, 0, 0, 100}).
		message(2, message.TypeUserControl, 0, 0, []byte{0}).
		message(2, message.TypeAck, 0, 0, []byte{0, 0, 1, 0}).
		message(2, message.TypeSetPeerBandwidth, 0, 0, []byte{0, 0, 1, 0, 2}).
		media(0))
	// Deep AMF: at the limit, past it, and far past it by hand.
	add("deep-amf-at-limit", newSeedWriter().command(0, "connect", 1.0, amf.Object{{Key: "app", Value: fuzzChannel}}, nested(amf.MaxDepth-1)).
		createStream().publish(fuzzKey))
	add("deep-amf-past-limit", newSeedWriter().message(3, message.TypeCommandAMF0, 0, 0,
		append(mustAMF0("connect", 1.0), nestedBytes(amf.MaxDepth+8)...)))
	add("deep-amf-metadata", pubHead().message(5, message.TypeDataAMF0, 1, 0,
		append(mustAMF0("@setDataFrame", "onMetaData"), nestedBytes(200)...)).media(0))
	// Aggregate messages: well formed, then truncated and overrunning.
	sub := func(typ uint8, ts uint32, p []byte) *chunk.Message {
		return &chunk.Message{Type: typ, Timestamp: ts, Payload: p}
	}
	good := aggregate(sub(message.TypeVideo, 1000, videoHeader), sub(message.TypeVideo, 1000, keyframe(1)),
		sub(message.TypeAudio, 1010, audioFrame(2)), sub(message.TypeDataAMF0, 1020, mustAMF0("onTextData", amf.Object{{Key: "text", Value: "hi"}})),
		sub(message.TypeAggregate, 1030, []byte{1, 2, 3}), sub(message.TypeCommandAMF0, 1030, mustAMF0("publish", 0.0, nil, "x")))
	add("aggregate", pubHead().message(7, message.TypeAggregate, 1, 500, good).
		message(7, message.TypeAggregate, 1, 600, good[:len(good)-3]).
		message(7, message.TypeAggregate, 1, 700, []byte{message.TypeVideo, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 2}))
	// AMF3 commands and data.
	add("amf3", newSeedWriter().
		command3(0, "connect", 1.0, amf.Object{{Key: "app", Value: fuzzChannel}, {Key: "objectEncoding", Value: 3.0}}).
		command3(0, "createStream", 2.0, nil).command3(1, "publish", 3.0, nil, fuzzKey, "live").
		message(5, message.TypeDataAMF3, 1, 0, append([]byte{0}, mustAMF0("@setDataFrame", "onMetaData", amf.ECMAArray{{Key: "a", Value: []byte{1, 2}}})...)).
		message(3, message.TypeCommandAMF3, 0, 0, append([]byte{0, 0x11}, 0x06, 0x0F, 'c', 'o', 'n', 'n', 'e', 'c', 't')).
		message(3, message.TypeCommandAMF3, 0, 0, nil).
		message(5, message.TypeDataAMF3, 1, 0, nil).
		media(0))
	add("shared-object-and-unknown-types", pubHead().
		message(3, message.TypeSharedObjectAMF0, 0, 0, []byte{0, 3, 'a', 'b', 'c'}).
		message(3, message.TypeSharedObjectAMF3, 0, 0, []byte{0}).
		message(3, 0xFF, 0, 0, []byte{1, 2, 3}).
		message(3, 0, 1, 0, nil).media(0))
	return seeds
}

// commandSeed is a crafted input of FuzzCommand.
type commandSeed struct {
	name          string
	setup         uint8
	first, second []byte
}

// commandSeeds are the crafted inputs of FuzzCommand: commands with odd
// argument types in each state.
func commandSeeds() []commandSeed {
	const (
		none, connected, created, publishing, waiting, selfPlay, refused, twice = 0, 1, 2, 3, 4, 5, 6, 7
		amf3, stream1, withMedia, withDelete, withPause                         = 8, 16, 32, 64, 128
	)
	nan := math.NaN()
	seeds := []commandSeed{
		{"connect", none, mustAMF0("connect", 1.0, amf.Object{{Key: "app", Value: fuzzChannel}}), mustAMF0("createStream", 2.0, nil)},
		{"connect-app-number", none, mustAMF0("connect", 1.0, amf.Object{{Key: "app", Value: 5.0}}), nil},
		{"connect-ecma-array", none, mustAMF0("connect", 1.0, amf.ECMAArray{{Key: "app", Value: fuzzChannel}}), nil},
		{"connect-strict-array", none, mustAMF0("connect", 1.0, amf.StrictArray{fuzzChannel}), nil},
		{"connect-typed-object", none, mustAMF0("connect", 1.0, amf.TypedObject{ClassName: "c", Object: amf.Object{{Key: "app", Value: fuzzChannel}}}), nil},
		{"connect-null-object", none, mustAMF0("connect", 1.0, nil), nil},
		{"connect-no-object", none, mustAMF0("connect"), nil},
		{"connect-txn-nan", none, mustAMF0("connect", nan, amf.Object{{Key: "app", Value: fuzzChannel + "/?x=1"}, {Key: "objectEncoding", Value: nan}}), nil},
		{"connect-txn-string", none, mustAMF0("connect", "1", amf.Object{{Key: "app", Value: fuzzChannel}, {Key: "objectEncoding", Value: "3"}}), nil},
		{"connect-long-app", none, mustAMF0("connect", 1.0, amf.Object{{Key: "app", Value: strings.Repeat("a", 70000)}}), nil},
		{"connect-app-unicode", none, mustAMF0("connect", 1.0, amf.Object{{Key: "app", Value: "ключ\x00\xff"}}), nil},
		{"connect-amf3", amf3, append(mustAMF0("connect", 1.0), 0x11, 0x0A, 0x0B, 0x01, 0x07, 'a', 'p', 'p', 0x06, 0x09, 'l', 'i', 'v', 'e', 0x01), nil},
		{"reconnect", connected, mustAMF0("connect", 9.0, amf.Object{{Key: "app", Value: "other"}}), nil},
		{"name-not-string", connected, mustAMF0(1.0, 2.0), nil},
		{"name-only", connected, mustAMF0("createStream"), nil},
		{"garbage", connected, []byte{0x02, 0xFF, 0xFF, 'x'}, nil},
		{"unknown-long-name", connected, mustAMF0(strings.Repeat("\xffx", 200), 5.0, nil), nil},
		{"unknown-txn-inf", connected, mustAMF0("noSuchMethod", math.Inf(-1), nil), nil},
		{"replies", connected, mustAMF0("_result", 1.0, nil, amf.Object{}), mustAMF0("onStatus", 0.0, nil, nil)},
		{"fc-publish", created, mustAMF0("releaseStream", nan, nil, fuzzKey), mustAMF0("FCPublish", -1.0, nil, amf.StrictArray{})},
		{"publish-number", created | stream1, mustAMF0("publish", 3.0, nil, 5.0), nil},
		{"publish-object", created | stream1, mustAMF0("publish", 3.0, nil, amf.Object{{Key: fuzzKey, Value: fuzzKey}}), nil},
		{"publish-empty", created | stream1, mustAMF0("publish", 3.0, nil, ""), nil},
		{"publish-query", created | stream1 | withMedia | withDelete, mustAMF0("publish", 3.0, nil, fuzzKey+"?a=%zz&b;c", "record"), nil},
		{"publish-stream-0", created | withMedia, mustAMF0("publish", 3.0, nil, fuzzKey), nil},
		{"publish-amf3", created | amf3 | stream1 | withMedia, mustAMF0("publish", 3.0, nil, fuzzKey, "live"), nil},
		{"publish-while-publishing", publishing | stream1, mustAMF0("publish", 8.0, nil, "k2"), nil},
		{"publish-after-refusal", refused | stream1, mustAMF0("publish", 8.0, nil, fuzzKey), nil},
		{"play-number", created | stream1, mustAMF0("play", 4.0, nil, 1.0, -2.0, -1.0, true), nil},
		{"play-cache", created | stream1 | withPause, mustAMF0("play", 4.0, nil, fuzzKey+"?cache=no"), mustAMF0("play", 5.0, nil, fuzzKey)},
		{"play-while-publishing", publishing | stream1 | withMedia, mustAMF0("play", 4.0, nil, fuzzKey+"?cache=clear"), nil},
		{"play-other-key", publishing | stream1, mustAMF0("play", 4.0, nil, "other"), nil},
		{"pause-odd", waiting | stream1, mustAMF0("pause", 0.0, nil, "yes", nan), mustAMF0("pause", 0.0, nil, 1.0)},
		{"receive-odd", selfPlay | stream1 | withMedia, mustAMF0("receiveVideo", 0.0, nil, 0.0), mustAMF0("receiveAudio", 0.0, nil, nil)},
		{"delete-odd", selfPlay | withMedia, mustAMF0("deleteStream", 0.0, nil, nan), mustAMF0("deleteStream", 0.0, nil, -1.0)},
		{"delete-huge", publishing, mustAMF0("deleteStream", 0.0, nil, 1e300), mustAMF0("deleteStream", 0.0, nil, "1")},
		{"close-stream", selfPlay | stream1 | withMedia, mustAMF0("closeStream", 0.0, nil), nil},
		{"player-queries", created | stream1, mustAMF0("FCSubscribe", 3.0, nil, fuzzKey), mustAMF0("getStreamLength", nan, nil, 5.0)},
		{"delete-by-name", publishing | withMedia, mustAMF0("closeStream", 0.0, nil, fuzzKey+"?a=b"), mustAMF0("deleteStream", 0.0, nil, fuzzKey)},
		{"create-many", twice, mustAMF0("createStream", 3.0, amf.Object{}), mustAMF0("deleteStream", 4.0, nil, 2.0)},
		{"deep-args", created, append(mustAMF0("publish", 3.0, nil), nestedBytes(amf.MaxDepth+1)...), nil},
		{"deep-args-at-limit", created | stream1, mustAMF0("play", 4.0, nested(amf.MaxDepth-1), fuzzKey), nil},
		{"references", created | stream1, append(mustAMF0("publish", 3.0), 0x03, 0, 1, 'a', 0x03, 0, 0, 0x09, 0, 0, 0x09, 0x07, 0, 0, 0x07, 0, 1, 0x02, 0, 1, 'k'), nil},
		{"all-types", created | stream1, mustAMF0("play", 4.0, nil, amf.Undefined{}, amf.Date{Millis: 1}, amf.XMLDocument("<a/>"), []byte{1}, amf.ECMAArray{}, strings.Repeat("x", 70000)), nil},
	}
	return seeds
}

// commandStream is the chunk stream FuzzCommand sends; see FuzzCommand.
func commandStream(setup uint8, first, second []byte) []byte {
	w := newSeedWriter()
	stage := setup & 7
	if stage >= 1 {
		w.connect(fuzzChannel)
	}
	if stage >= 2 {
		w.createStream()
	}
	switch stage {
	case 3:
		w.publish(fuzzKey)
	case 4:
		w.play(fuzzKey)
	case 5:
		w.play(fuzzKey).publish(fuzzKey)
	case 6:
		w.publish("deny")
	case 7:
		w.connect(fuzzChannel).createStream()
	}
	typ := message.TypeCommandAMF0
	if setup&8 != 0 {
		typ = message.TypeCommandAMF3
	}
	var streamID uint32
	if setup&16 != 0 {
		streamID = 1
	}
	for _, body := range [][]byte{first, second} {
		if len(body) == 0 {
			continue
		}
		if typ == message.TypeCommandAMF3 {
			body = append([]byte{0}, body...)
		}
		w.message(3, typ, streamID, 0, body)
	}
	if setup&32 != 0 {
		w.media(0)
	}
	if setup&64 != 0 {
		w.command(0, "deleteStream", 0.0, nil, 1.0)
	}
	if setup&128 != 0 {
		w.command(1, "pause", 0.0, nil, true, 0.0).command(1, "pause", 0.0, nil, false, 0.0).
			command(1, "receiveVideo", 0.0, nil, true).command(1, "closeStream", 0.0, nil)
	}
	return w.b
}

// commandCorpusFile renders a FuzzCommand input as a corpus file.
func commandCorpusFile(s commandSeed) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\nbyte(%q)\n[]byte(%q)\n[]byte(%q)\n", s.setup, s.first, s.second)
}

func connectionCorpusFile(data []byte) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", data)
}

// checkCorpusFile compares a committed seed with what it should hold, or
// rewrites it under -update-fuzz-corpus.
func checkCorpusFile(t *testing.T, path string, want []byte) {
	t.Helper()
	if *updateFuzzCorpus {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("%s is missing or stale; run go test ./internal/server -run TestFuzzSeedCorpus -update-fuzz-corpus", path)
	}
}

// TestFuzzSeedCorpus checks that the crafted seeds are committed under
// testdata/fuzz (rewriting them with -update-fuzz-corpus), that the
// recordings of real ffmpeg traffic are there, and that every seed runs
// cleanly.
func TestFuzzSeedCorpus(t *testing.T) {
	for _, s := range connectionSeeds() {
		checkCorpusFile(t, filepath.Join("testdata", "fuzz", "FuzzConnection", "seed-"+s.name), connectionCorpusFile(s.data))
	}
	for _, s := range commandSeeds() {
		checkCorpusFile(t, filepath.Join("testdata", "fuzz", "FuzzCommand", "seed-"+s.name), commandCorpusFile(s))
	}
	for _, name := range []string{"ffmpeg-publish", "ffmpeg-play"} {
		data, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzConnection", name))
		if err != nil {
			t.Errorf("recording %s missing: %v; run go test ./internal/server -run TestRecordFFmpegSeeds -record-ffmpeg", name, err)
			continue
		}
		if !bytes.HasPrefix(data, []byte("go test fuzz v1\n[]byte(\"")) {
			t.Errorf("recording %s is not a corpus file", name)
		}
	}
}

// recordingProxy forwards TCP connections to target and keeps what each
// client sent, in the order the connections arrived.
type recordingProxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	sent   []*syncBuffer // guarded by mu
	conns  []net.Conn    // guarded by mu
}

func newRecordingProxy(t *testing.T, target string) *recordingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &recordingProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *recordingProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		buf := &syncBuffer{}
		p.mu.Lock()
		p.sent = append(p.sent, buf)
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			_, _ = io.Copy(io.MultiWriter(server, buf), client)
			server.Close()
		}()
		go func() {
			defer p.wg.Done()
			_, _ = io.Copy(client, server)
			client.Close()
		}()
	}
}

// recorded returns what the i-th client sent after the handshake.
func (p *recordingProxy) recorded(t *testing.T, i int) []byte {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if i >= len(p.sent) {
		t.Fatalf("only %d connections recorded", len(p.sent))
	}
	b := []byte(p.sent[i].String())
	if len(b) <= len(simpleHandshake) {
		t.Fatalf("connection %d sent only %d bytes", i, len(b))
	}
	return b[len(simpleHandshake):]
}

func (p *recordingProxy) url(channel, key string) string {
	return fmt.Sprintf("rtmp://%s/%s/%s", p.ln.Addr(), channel, key)
}

// TestRecordFFmpegSeeds records what ffmpeg sends after the handshake when
// it publishes a short generated stream and when it plays one, and writes
// it (the first 64 KiB) into the FuzzConnection seed corpus. It runs only
// with -record-ffmpeg.
func TestRecordFFmpegSeeds(t *testing.T) {
	if !*recordFFmpeg {
		t.Skip("run with -record-ffmpeg to refresh the ffmpeg recordings")
	}
	ts := startServer(t, nil)
	proxy := newRecordingProxy(t, ts.addr)
	pub := publishFFmpeg(t, proxy.url(fuzzChannel, fuzzKey), "-t", "4")
	ts.waitPublishing(t, fuzzChannel, pub)
	decodeFrames(t, proxy.url(fuzzChannel, fuzzKey), 10)
	if err := pub.Wait(t, 30*time.Second); err != nil {
		t.Fatalf("publisher: %v\n%s", err, pub.Stderr.String())
	}
	waitFor(t, "publication ended", 10*time.Second, func() bool { return ts.Hub().Lookup(fuzzChannel) == nil })
	for i, name := range []string{"ffmpeg-publish", "ffmpeg-play"} {
		data := proxy.recorded(t, i)
		data = data[:min(len(data), maxRecordedSeed)]
		path := filepath.Join("testdata", "fuzz", "FuzzConnection", name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, connectionCorpusFile(data), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes", path, len(data))
	}
}
