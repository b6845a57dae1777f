package config

import (
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Fleet configures the fleet of boxes sharing one Redis: one publisher per
// channel across the boxes, and the registry of boxes and streams (see
// README, "Running a fleet").
type Fleet struct {
	// Use enables the fleet; it requires REDIS_USE=YES and RTMP_HOST,
	// which names this box. FLEET, default NO.
	Use bool
	// ClaimTTL is how long a stream's claim and the box's registry entry
	// live in Redis without a refresh: how soon the channels of a box
	// that died are free. FLEET_CLAIM_TTL_SECONDS, default 10.
	ClaimTTL time.Duration
	// KeyPrefix starts every Redis key of the fleet. FLEET_KEY_PREFIX,
	// default "rtmp:".
	KeyPrefix string
	// RefuseWhenRedisDown refuses publishes while Redis is unreachable,
	// instead of accepting them unclaimed. FLEET_REDIS_DOWN=refuse;
	// default accept.
	RefuseWhenRedisDown bool
}

// LogValue shows the fleet settings.
func (f Fleet) LogValue() slog.Value { return slog.GroupValue(f.logAttrs()...) }

func (f Fleet) logAttrs() []slog.Attr {
	down := "accept"
	if f.RefuseWhenRedisDown {
		down = "refuse"
	}
	return []slog.Attr{
		slog.Bool("fleet", f.Use),
		slog.Float64("fleet_claim_ttl_seconds", f.ClaimTTL.Seconds()),
		slog.String("fleet_key_prefix", f.KeyPrefix),
		slog.String("fleet_redis_down", down),
	}
}

// Limits of the fleet settings.
const (
	maxClaimTTLSeconds = 3600
	maxKeyPrefix       = 64
	// MaxHostName bounds RTMP_HOST when it names a box of a fleet: it is
	// part of a Redis key and of the drain command.
	MaxHostName = 253
)

// parseFleet reads the fleet variables and DRAIN, and checks what the
// fleet needs from the other settings.
func (p *parser) parseFleet(c *Config) {
	c.Fleet = Fleet{
		Use:       p.boolean("FLEET"),
		ClaimTTL:  time.Duration(p.number("FLEET_CLAIM_TTL_SECONDS", 1, maxClaimTTLSeconds, fmt.Sprintf("a whole number of seconds 1..%d", maxClaimTTLSeconds))) * time.Second,
		KeyPrefix: p.keyPrefix("FLEET_KEY_PREFIX"),
	}
	switch v := p.value("FLEET_REDIS_DOWN"); strings.ToLower(v) {
	case "accept":
	case "refuse":
		c.Fleet.RefuseWhenRedisDown = true
	default:
		p.invalid("FLEET_REDIS_DOWN", v, "accept or refuse")
	}
	c.Drain = p.boolean("DRAIN")
	if !c.Fleet.Use {
		return
	}
	if !c.Redis.Use {
		p.fail("FLEET", "FLEET=YES requires REDIS_USE=YES: the fleet keeps its claims in Redis")
	}
	switch {
	case c.RTMPHost == "":
		p.fail("RTMP_HOST", "required when FLEET=YES: it names this box in the fleet, and must differ on every box")
	case !ValidHostName(c.RTMPHost):
		p.invalid("RTMP_HOST", c.RTMPHost, fmt.Sprintf("with FLEET=YES, 1 to %d characters a-z A-Z 0-9 . - _ :", MaxHostName))
	}
}

// ValidHostName reports whether s can name a box of a fleet (RTMP_HOST
// with FLEET=YES): 1 to MaxHostName letters, digits, '.', '-', '_', ':'.
func ValidHostName(s string) bool {
	if s == "" || len(s) > MaxHostName {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '.' || b == '-' || b == '_' || b == ':') {
			return false
		}
	}
	return true
}

// keyPrefix reads a Redis key prefix: printable ASCII without spaces.
func (p *parser) keyPrefix(name string) string {
	v := p.value(name)
	ok := len(v) <= maxKeyPrefix
	for i := 0; i < len(v) && ok; i++ {
		ok = v[i] > ' ' && v[i] < 0x7f
	}
	if !ok {
		p.invalid(name, v, fmt.Sprintf("up to %d printable ASCII characters without spaces", maxKeyPrefix))
		return ""
	}
	return v
}
