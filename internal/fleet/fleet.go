// Package fleet lets boxes that share one Redis act as a fleet: a channel
// is published on one box at a time, each box keeps an entry with its load
// in a registry, and a stream can be found by its channel.
//
// An accepted publish claims its channel: the key PREFIXstream:CHANNEL
// holds a StreamRecord naming the box, under a TTL. The box refreshes its
// claims every third of the TTL with a compare-and-extend script, which
// extends only a claim whose value is still the box's own, and releases a
// claim with a compare-and-delete when the stream ends. A claim whose box
// died expires after the TTL. The box's entry, PREFIXbox:HOST, holds a
// BoxRecord under the same TTL.
//
// A publish of a channel that another box holds is refused, unless it
// comes with the same stream key: then it is the encoder reconnecting to
// another box, and the holder is asked (close-stream over the command
// channel) to end its session; the publish claims the channel once the
// holder has let go, within TakeoverWait.
package fleet

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/rtmp-server/rtmp-server/internal/logging"
	"github.com/rtmp-server/rtmp-server/internal/server"
)

// Timing of the fleet.
const (
	// TakeoverWait bounds how long a publish waits for the box holding its
	// channel (with the same key) to let go.
	TakeoverWait = 5 * time.Second
	// takeoverPoll is how often the claim is tried while waiting.
	takeoverPoll = 50 * time.Millisecond
	// opTimeout bounds one Redis request. A publish waits for at most a
	// few of them, so an unreachable Redis delays it little.
	opTimeout = 2 * time.Second
	// dialTimeout bounds connecting to Redis.
	dialTimeout = time.Second
	// maxRecordBytes bounds a record read from Redis.
	maxRecordBytes = 4096
)

// ErrRefused is matched (errors.Is) by the errors of Admit that refuse a
// publish.
var ErrRefused = errors.New("fleet: publish refused")

// Refusal is a refused publish; its text is the reason told to the
// publisher (the status description) and logged.
type Refusal struct{ Reason string }

func (r *Refusal) Error() string        { return r.Reason }
func (r *Refusal) Is(target error) bool { return target == ErrRefused }

// StreamRecord is the value of a claim, PREFIXstream:CHANNEL, as JSON.
type StreamRecord struct {
	Box      string    `json:"box"`        // RTMP_HOST of the box publishing it
	Channel  string    `json:"channel"`    // the channel
	StreamID string    `json:"stream_id"`  // the publication's stream id (the start callback's)
	Started  time.Time `json:"started"`    // when the publish was accepted
	KeyHash  string    `json:"key_sha256"` // hex SHA-256 of CHANNEL, a zero byte and the stream key
}

// BoxRecord is the value of a box's registry entry, PREFIXbox:HOST, as JSON.
type BoxRecord struct {
	Box               string    `json:"box"`
	Publishers        int       `json:"publishers"`
	Players           int       `json:"players"`
	BytesInPerSecond  float64   `json:"bytes_in_per_second"`
	BytesOutPerSecond float64   `json:"bytes_out_per_second"`
	Draining          bool      `json:"draining"`
	Updated           time.Time `json:"updated"`
}

// Load is what a box reports about itself in the registry.
type Load struct {
	Publishers, Players int
	BytesIn, BytesOut   uint64 // totals so far; the registry shows their rates
	Draining            bool
}

// Streams ends a publication of this box: the newer of two publishes of a
// channel found on two boxes. The server implements it.
type Streams interface {
	CloseStream(channel, streamID string) (live bool, pending int)
}

// Config are the settings of a Fleet.
type Config struct {
	Host           string        // this box's name (RTMP_HOST)
	Prefix         string        // starts every key (FLEET_KEY_PREFIX)
	TTL            time.Duration // of claims and the box's entry (FLEET_CLAIM_TTL_SECONDS)
	RefuseWhenDown bool          // refuse publishes while Redis is unreachable
	CommandChannel string        // the pub/sub channel of control commands (REDIS_CHANNEL)

	Load    func() Load // the box's load, for the registry; nil reports none
	Streams Streams     // ends the newer publish of a conflict
	Logger  *slog.Logger
}

// Fleet is one box's membership in the fleet. Create it with New, set it
// as the server's Admission, Start it, and Close it after the server's
// Shutdown (which releases the claims).
type Fleet struct {
	cfg Config
	rdb *redis.Client
	log *slog.Logger

	touch    chan struct{} // asks the loop for a registry update now
	stop     chan struct{} // closed by Close
	loopDone chan struct{} // closed when the loop has returned
	started  bool          // Start was called; owned by the caller of Start and Close
	closed   sync.Once
	closeErr error // set by the first Close

	releases sync.WaitGroup // release requests in flight

	keepEntry atomic.Bool // Close leaves the registry entry: the next process of this box goes on with it

	mu     sync.Mutex
	claims map[*claim]struct{} // guarded by mu: the live publishes of this box
	down   bool                // guarded by mu: Redis failed, and the outage is logged
}

// claim is the claim of one publish.
type claim struct {
	f       *Fleet
	key     string       // immutable: the Redis key
	value   string       // immutable: the StreamRecord as JSON
	rec     StreamRecord // immutable
	opMu    sync.Mutex   // serialises the claim's Redis requests
	done    bool         // guarded by opMu: released; no request may claim it again
	carried bool         // guarded by opMu: handed to the next process; never deleted here
	lost    bool         // guarded by opMu: a conflict ended it; not refreshed
	claimed bool         // guarded by opMu: Redis held the value at the last request
}

// RedisOptions are the client options for the Redis at addr, with the
// short timeouts a publish can afford to wait.
func RedisOptions(addr, password string, useTLS bool) (*redis.Options, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("fleet: Redis address %q: %w", addr, err)
	}
	opts := &redis.Options{
		Addr:            addr,
		Password:        password,
		Protocol:        2,
		DisableIdentity: true,
		DialTimeout:     dialTimeout,
		DialerRetries:   1,
		ReadTimeout:     opTimeout,
		WriteTimeout:    opTimeout,
		MaxRetries:      -1, // no retries: the loop tries again in a moment
		PoolSize:        8,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	}
	if useTLS {
		opts.TLSConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	return opts, nil
}

// New returns the fleet membership of box cfg.Host over the Redis that
// opts reach. It does not connect yet.
func New(cfg Config, opts *redis.Options) (*Fleet, error) {
	switch {
	case cfg.Host == "":
		return nil, errors.New("fleet: Config.Host is empty")
	case cfg.TTL < 100*time.Millisecond:
		return nil, fmt.Errorf("fleet: Config.TTL %v is below 100ms", cfg.TTL)
	case cfg.CommandChannel == "":
		return nil, errors.New("fleet: Config.CommandChannel is empty")
	case cfg.Streams == nil:
		return nil, errors.New("fleet: Config.Streams is nil")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Fleet{
		cfg:      cfg,
		rdb:      redis.NewClient(opts),
		log:      log.With("fleet_box", cfg.Host),
		touch:    make(chan struct{}, 1),
		stop:     make(chan struct{}),
		loopDone: make(chan struct{}),
		claims:   make(map[*claim]struct{}),
	}, nil
}

// StreamKey is the Redis key of channel's claim.
func (f *Fleet) StreamKey(channel string) string { return f.cfg.Prefix + "stream:" + channel }

// BoxKey is the Redis key of this box's registry entry.
func (f *Fleet) BoxKey() string { return f.cfg.Prefix + "box:" + f.cfg.Host }

// KeyHash is the key_sha256 of a StreamRecord.
func KeyHash(channel, key string) string {
	sum := sha256.Sum256([]byte(channel + "\x00" + key))
	return hex.EncodeToString(sum[:])
}

// refreshEvery is how often claims and the registry entry are refreshed.
func (f *Fleet) refreshEvery() time.Duration { return f.cfg.TTL / 3 }

// Start runs the loop that refreshes the claims and the registry entry
// until Close.
func (f *Fleet) Start() {
	f.started = true
	go f.loop()
}

// Touch asks for the registry entry to be written now (the load changed:
// draining).
func (f *Fleet) Touch() {
	select {
	case f.touch <- struct{}{}:
	default:
	}
}

// Close waits for the releases in flight (the server's Shutdown has ended
// the publications), stops the loop, removes the box's registry entry and
// closes the Redis client. Later calls return the first one's error.
func (f *Fleet) Close() error {
	f.closed.Do(func() { f.closeErr = f.close() })
	return f.closeErr
}

func (f *Fleet) close() error {
	f.releases.Wait()
	close(f.stop)
	if f.started {
		<-f.loopDone
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if f.keepEntry.Load() {
		return f.rdb.Close()
	}
	if err := f.rdb.Del(ctx, f.BoxKey()).Err(); err != nil {
		f.log.Warn("fleet: registry entry not removed; it expires", "error", err, "ttl", f.cfg.TTL)
	}
	return f.rdb.Close()
}

// The scripts that keep a claim honest: each acts only on the value the
// caller names, so a box never extends, replaces or deletes a claim that
// is not the one it believes it holds.
var (
	// extendScript extends KEYS[1] if it holds ARGV[1] (returns 1), claims
	// it if it is free (returns 2), or returns the value another holds.
	extendScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return v`)
	// replaceScript sets KEYS[1] to ARGV[2] if it holds ARGV[1].
	replaceScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0`)
	// deleteScript deletes KEYS[1] if it holds ARGV[1].
	deleteScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)
)

// Admit claims ev.Channel for a publish the start callback approved (as
// server.Admission). It returns the function that releases the claim, to
// be called once when the publication ends or is refused after all. The
// error is a *Refusal when another box holds the channel with another
// key, or with the same key and did not let go within TakeoverWait, or
// when Redis is unreachable and Config.RefuseWhenDown is set; or ctx's
// error.
func (f *Fleet) Admit(ctx context.Context, ev server.PublishEvent) (release func(), err error) {
	rec := StreamRecord{Box: f.cfg.Host, Channel: ev.Channel, StreamID: ev.StreamID, Started: time.Now().UTC(), KeyHash: KeyHash(ev.Channel, ev.Key)}
	value, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	c := &claim{f: f, key: f.StreamKey(ev.Channel), value: string(value), rec: rec}
	log := f.log.With("session", ev.Session, "channel", ev.Channel, "stream_id", logging.Clip(ev.StreamID))

	deadline := time.Now().Add(TakeoverWait)
	asked := ""
	for {
		holder, raw, err := c.tryClaim(ctx)
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil:
			if !f.redisFailed(err) {
				return nil, err
			}
			if f.cfg.RefuseWhenDown {
				log.Warn("fleet: publish refused: Redis unreachable (FLEET_REDIS_DOWN=refuse)")
				return nil, &Refusal{Reason: "fleet unavailable: try again later"}
			}
			log.Info("fleet: publish accepted without a claim: Redis unreachable; claimed when it returns")
			return f.register(c), nil
		case holder == nil:
			f.redisOK()
			return f.register(c), nil
		}
		f.redisOK()
		box := logging.Clip(holder.Box)
		switch {
		case holder.KeyHash != rec.KeyHash:
			log.Info("fleet: publish refused: channel held by another box", "holder", box)
			return nil, &Refusal{Reason: "already publishing on " + box}
		case asked == "":
			if err := f.askToEnd(ctx, holder); err != nil {
				log.Warn("fleet: publish refused: could not ask the holder to let go", "holder", box, "error", err)
				return nil, &Refusal{Reason: "already publishing on " + box}
			}
			asked = raw
			log.Info("fleet: same key held by another box: asked it to end its session", "holder", box, "holder_stream_id", logging.Clip(holder.StreamID))
		case raw != asked:
			// Yet another publish claimed it meanwhile: ask again.
			asked = ""
			continue
		case time.Now().After(deadline):
			log.Warn("fleet: publish refused: the holder did not let go in time", "holder", box, "waited", TakeoverWait)
			return nil, &Refusal{Reason: "already publishing on " + box}
		}
		t := time.NewTimer(takeoverPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// tryClaim sets the claim if the channel is free, or replaces a stale
// value of this same box (a publisher of this box being replaced, or a
// claim left from before a restart). Otherwise it returns the holder's
// record and raw value.
func (c *claim) tryClaim(ctx context.Context) (*StreamRecord, string, error) {
	f := c.f
	for {
		rctx, cancel := context.WithTimeout(ctx, opTimeout)
		ok, err := f.rdb.SetNX(rctx, c.key, c.value, f.cfg.TTL).Result()
		if err != nil || ok {
			cancel()
			if ok {
				c.opMu.Lock()
				c.claimed = true
				c.opMu.Unlock()
			}
			return nil, "", err
		}
		raw, err := f.rdb.Get(rctx, c.key).Result()
		cancel()
		if errors.Is(err, redis.Nil) {
			continue // released meanwhile
		}
		if err != nil {
			return nil, "", err
		}
		holder, err := parseRecord(raw)
		if err != nil {
			// Not a claim this fleet wrote: leave it alone.
			return &StreamRecord{Box: "an unknown holder"}, raw, nil
		}
		if holder.Box != f.cfg.Host {
			return holder, raw, nil
		}
		// This box's own: the hub has decided between its publishes of
		// the channel (a silent publisher replaced by its encoder's new
		// session), or the claim is left from before a restart.
		rctx, cancel = context.WithTimeout(ctx, opTimeout)
		n, err := replaceScript.Run(rctx, f.rdb, []string{c.key}, raw, c.value, f.cfg.TTL.Milliseconds()).Int()
		cancel()
		if err != nil {
			return nil, "", err
		}
		if n == 1 {
			c.opMu.Lock()
			c.claimed = true
			c.opMu.Unlock()
			return nil, "", nil
		}
	}
}

// askToEnd asks the holder's box, over the command channel, to end the
// session holding the claim.
func (f *Fleet) askToEnd(ctx context.Context, holder *StreamRecord) error {
	if !commandSafe(holder.Channel) || !commandSafe(holder.StreamID) {
		return errors.New("the holder's channel or stream id cannot be sent in a command")
	}
	rctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	return f.rdb.Publish(rctx, f.cfg.CommandChannel, "close-stream>"+holder.Channel+"|"+holder.StreamID).Err()
}

// commandSafe reports whether s can be an argument of a control command.
func commandSafe(s string) bool {
	if s == "" || strings.ContainsAny(s, "|>") {
		return false
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

func parseRecord(raw string) (*StreamRecord, error) {
	if len(raw) > maxRecordBytes {
		return nil, fmt.Errorf("record of %d bytes", len(raw))
	}
	var rec StreamRecord
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return nil, err
	}
	if rec.Box == "" {
		return nil, errors.New("record names no box")
	}
	return &rec, nil
}

// register adds c to the live claims and returns its release.
func (f *Fleet) register(c *claim) func() {
	f.mu.Lock()
	f.claims[c] = struct{}{}
	f.mu.Unlock()
	var once sync.Once
	return func() { once.Do(c.release) }
}

// release forgets the claim and deletes it from Redis if it still holds
// this publish's value; in the background, so the publisher's goroutine
// does not wait for Redis.
func (c *claim) release() {
	f := c.f
	f.mu.Lock()
	delete(f.claims, c)
	f.mu.Unlock()
	f.releases.Add(1)
	go func() {
		defer f.releases.Done()
		c.opMu.Lock()
		defer c.opMu.Unlock()
		c.done = true
		if c.carried {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if err := deleteScript.Run(ctx, f.rdb, []string{c.key}, c.value).Err(); err != nil && f.redisFailed(err) {
			f.log.Info("fleet: claim not released: Redis unreachable; it expires", "channel", c.rec.Channel, "ttl", f.cfg.TTL)
		}
	}()
}

// redisFailed notes a failed request: the first of an outage is logged.
// It reports whether err is a failure to reach Redis (not ctx's end).
func (f *Fleet) redisFailed(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	f.mu.Lock()
	first := !f.down
	f.down = true
	f.mu.Unlock()
	if first {
		policy := "publishes go on unclaimed"
		if f.cfg.RefuseWhenDown {
			policy = "publishes are refused"
		}
		f.log.Warn("fleet: Redis unreachable; "+policy+" until it returns", "error", err)
	}
	return true
}

// redisOK notes a request that succeeded: the end of an outage is logged.
func (f *Fleet) redisOK() {
	f.mu.Lock()
	was := f.down
	f.down = false
	f.mu.Unlock()
	if was {
		f.log.Info("fleet: Redis reachable again; claiming the live streams again")
		f.Touch()
	}
}

// RedisDown reports whether the last request to Redis failed.
func (f *Fleet) RedisDown() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down
}

// loop refreshes the claims and the registry entry every third of the TTL.
func (f *Fleet) loop() {
	defer close(f.loopDone)
	t := time.NewTicker(f.refreshEvery())
	defer t.Stop()
	var rates rateMeter
	for {
		// While Redis is unreachable the claims wait for the next round,
		// rather than each waiting for a timeout.
		if f.writeRegistry(&rates) && f.refreshClaims() {
			f.redisOK()
		}
		select {
		case <-f.stop:
			return
		case <-t.C:
		case <-f.touch:
		}
	}
}

// refreshClaims extends, or claims again, every live claim, and resolves
// conflicts. It reports whether Redis answered every request.
func (f *Fleet) refreshClaims() bool {
	f.mu.Lock()
	claims := make([]*claim, 0, len(f.claims))
	for c := range f.claims {
		claims = append(claims, c)
	}
	f.mu.Unlock()
	for _, c := range claims {
		if err := c.refresh(); err != nil {
			f.redisFailed(err)
			return false
		}
	}
	return true
}

// refresh extends the claim if Redis still holds its value, claims it
// again if the key is gone (Redis restarted, or it expired during an
// outage), and otherwise resolves the conflict: of two publishes of one
// channel on two boxes, the newer one ends.
func (c *claim) refresh() error {
	f := c.f
	c.opMu.Lock()
	if c.done || c.lost {
		c.opMu.Unlock()
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	res, err := extendScript.Run(ctx, f.rdb, []string{c.key}, c.value, f.cfg.TTL.Milliseconds()).Result()
	cancel()
	if err != nil {
		c.claimed = false
		c.opMu.Unlock()
		return err
	}
	raw, held := res.(string)
	if !held {
		if n, _ := res.(int64); n == 2 {
			f.log.Info("fleet: claimed again", "channel", c.rec.Channel, "stream_id", logging.Clip(c.rec.StreamID))
		}
		c.claimed = true
		c.opMu.Unlock()
		return nil
	}
	c.claimed = false
	holder, perr := parseRecord(raw)
	if perr != nil || holder.Box == f.cfg.Host {
		// Not a claim of this fleet, or this box's newer publish of the
		// channel replacing this one: nothing to resolve.
		c.opMu.Unlock()
		return nil
	}
	box := logging.Clip(holder.Box)
	log := f.log.With("channel", c.rec.Channel, "stream_id", logging.Clip(c.rec.StreamID), "holder", box, "holder_stream_id", logging.Clip(holder.StreamID))
	if newer(c.rec, *holder) {
		c.lost = true
		c.opMu.Unlock()
		log.Warn("fleet: conflict: another box claimed the channel before this publish; ending this newer one")
		f.cfg.Streams.CloseStream(c.rec.Channel, c.rec.StreamID)
		return nil
	}
	ctx, cancel = context.WithTimeout(context.Background(), opTimeout)
	n, err := replaceScript.Run(ctx, f.rdb, []string{c.key}, raw, c.value, f.cfg.TTL.Milliseconds()).Int()
	cancel()
	if err != nil {
		c.opMu.Unlock()
		return err
	}
	c.claimed = n == 1
	c.opMu.Unlock()
	if n != 1 {
		return nil // changed meanwhile; the next refresh looks again
	}
	log.Warn("fleet: conflict: another box claimed the channel after this publish began; claimed it back and asked that box to end its newer publish")
	ctx, cancel = context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := f.askToEnd(ctx, holder); err != nil {
		log.Warn("fleet: could not ask the other box to end its publish", "error", err)
	}
	return nil
}

// newer reports whether a began after b (ties broken by box name), so
// that two boxes that find each other's claim agree on which one ends.
func newer(a, b StreamRecord) bool {
	if !a.Started.Equal(b.Started) {
		return a.Started.After(b.Started)
	}
	return a.Box > b.Box
}

// rateMeter turns the byte totals into rates between registry updates.
type rateMeter struct {
	at      time.Time
	in, out uint64
}

func (m *rateMeter) rates(now time.Time, in, out uint64) (inRate, outRate float64) {
	if !m.at.IsZero() && now.After(m.at) && in >= m.in && out >= m.out {
		secs := now.Sub(m.at).Seconds()
		inRate, outRate = float64(in-m.in)/secs, float64(out-m.out)/secs
	}
	m.at, m.in, m.out = now, in, out
	return inRate, outRate
}

// Record returns this box's registry record as of now.
func (f *Fleet) record(rates *rateMeter) BoxRecord {
	var load Load
	if f.cfg.Load != nil {
		load = f.cfg.Load()
	}
	now := time.Now().UTC()
	in, out := rates.rates(now, load.BytesIn, load.BytesOut)
	return BoxRecord{
		Box:               f.cfg.Host,
		Publishers:        load.Publishers,
		Players:           load.Players,
		BytesInPerSecond:  in,
		BytesOutPerSecond: out,
		Draining:          load.Draining,
		Updated:           now,
	}
}

// writeRegistry writes the box's entry; it reports whether Redis took it.
func (f *Fleet) writeRegistry(rates *rateMeter) bool {
	value, err := json.Marshal(f.record(rates))
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := f.rdb.Set(ctx, f.BoxKey(), value, f.cfg.TTL).Err(); err != nil {
		f.redisFailed(err)
		return false
	}
	return true
}

// Claims returns the records of this box's live publishes and whether
// Redis held each at the last request (for status and tests).
func (f *Fleet) Claims() map[StreamRecord]bool {
	f.mu.Lock()
	claims := make([]*claim, 0, len(f.claims))
	for c := range f.claims {
		claims = append(claims, c)
	}
	f.mu.Unlock()
	out := make(map[StreamRecord]bool, len(claims))
	for _, c := range claims {
		c.opMu.Lock()
		out[c.rec] = c.claimed
		c.opMu.Unlock()
	}
	return out
}
