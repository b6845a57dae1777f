package server

import (
	"log/slog"
	"sync"
	"time"
)

// rateLimitedInterval is the least time between two lines of one rate-limited log.
const rateLimitedInterval = time.Second

// rateLimited logs at most one line per interval and counts the rest, for
// events a flood can repeat thousands of times a second.
type rateLimited struct {
	mu         sync.Mutex
	last       time.Time // guarded by mu
	suppressed int       // guarded by mu
}

func (r *rateLimited) warn(log *slog.Logger, msg string, args ...any) {
	r.mu.Lock()
	now := time.Now()
	if now.Sub(r.last) < rateLimitedInterval {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	n := r.suppressed
	r.last, r.suppressed = now, 0
	r.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	log.Warn(msg, args...)
}
