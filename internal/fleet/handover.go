package fleet

// A hand-over to the next process of this box (a restart or an upgrade):
// the claims of the publishes handed over go on. The old process gives
// each claim's value away (Token, then CarriedOver once the hand-over
// happened) and no longer refreshes or deletes it; the new one takes it
// back (TakeBack) with the compare-and-extend: the claim is extended if it
// still holds that value, set again if it expired meanwhile, and the
// publish ends if another box claimed the channel in between.

import (
	"context"
	"errors"

	"github.com/rtmp-server/rtmp-server/internal/logging"
	"github.com/rtmp-server/rtmp-server/internal/server"
)

// Token returns the claim value of the live publish ev for the next
// process (as server.CarriedAdmission); ok is false when this box has no
// claim for ev. The claim is still this process's until CarriedOver.
func (f *Fleet) Token(ev server.PublishEvent) (value string, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.find(ev); c != nil {
		return c.value, true
	}
	return "", false
}

// CarriedOver stops keeping the claim of the publish ev, which went to the
// next process (as server.CarriedAdmission): it is no longer refreshed,
// and its release leaves it in Redis.
func (f *Fleet) CarriedOver(ev server.PublishEvent) {
	f.mu.Lock()
	c := f.find(ev)
	if c != nil {
		delete(f.claims, c)
	}
	f.mu.Unlock()
	if c == nil {
		return
	}
	c.opMu.Lock()
	c.carried = true
	c.done = true
	c.opMu.Unlock()
}

// find returns the live claim of ev, or nil. f.mu is held.
func (f *Fleet) find(ev server.PublishEvent) *claim {
	for c := range f.claims {
		if c.rec.Channel == ev.Channel && c.rec.StreamID == ev.StreamID {
			return c
		}
	}
	return nil
}

// KeepEntry makes Close leave the box's registry entry in Redis: the next
// process of this box refreshes it (it expires otherwise).
func (f *Fleet) KeepEntry() { f.keepEntry.Store(true) }

// TakeBack takes back the claim value that the previous process of this
// box carried over for the publish ev (as server.CarriedAdmission): the
// claim is extended if Redis still holds that value, set again if the key
// is gone, and otherwise (another box claimed the channel meanwhile) the
// publish is refused: a *Refusal. With Redis unreachable the publish goes
// on unclaimed, and is claimed when Redis returns, like a live publish
// during an outage. The release is Admit's.
func (f *Fleet) TakeBack(ctx context.Context, ev server.PublishEvent, value string) (release func(), err error) {
	rec, err := parseRecord(value)
	if err != nil {
		return nil, errors.New("fleet: carried claim: " + err.Error())
	}
	if rec.Box != f.cfg.Host || rec.Channel != ev.Channel || rec.StreamID != ev.StreamID || rec.KeyHash != KeyHash(ev.Channel, ev.Key) {
		return nil, errors.New("fleet: carried claim is not this box's claim of this publish")
	}
	c := &claim{f: f, key: f.StreamKey(ev.Channel), value: value, rec: *rec}
	log := f.log.With("session", ev.Session, "channel", ev.Channel, "stream_id", logging.Clip(ev.StreamID))
	if f.RedisDown() {
		// Found unreachable for an earlier one: the others do not wait
		// for a timeout each before their players get media again.
		log.Info("fleet: handed-over publish goes on without its claim: Redis unreachable; claimed when it returns")
		return f.register(c), nil
	}
	rctx, cancel := context.WithTimeout(ctx, opTimeout)
	res, err := extendScript.Run(rctx, f.rdb, []string{c.key}, c.value, f.cfg.TTL.Milliseconds()).Result()
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		f.redisFailed(err)
		log.Info("fleet: handed-over publish goes on without its claim: Redis unreachable; claimed when it returns")
		return f.register(c), nil
	}
	f.redisOK()
	if raw, held := res.(string); held {
		box := "an unknown holder"
		if holder, perr := parseRecord(raw); perr == nil {
			box = logging.Clip(holder.Box)
		}
		log.Warn("fleet: handed-over publish ended: another box claimed the channel during the hand-over", "holder", box)
		return nil, &Refusal{Reason: "channel claimed by " + box + " during the hand-over"}
	}
	if n, _ := res.(int64); n == 2 {
		log.Info("fleet: handed-over publish claimed again: its claim had expired")
	}
	c.claimed = true
	return f.register(c), nil
}

var _ server.CarriedAdmission = (*Fleet)(nil)
