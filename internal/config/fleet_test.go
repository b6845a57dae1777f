package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestFleetSettings(t *testing.T) {
	fleet := map[string]string{"FLEET": "YES", "REDIS_USE": "YES", "RTMP_HOST": "box-1.example"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range fleet {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name string
		env  map[string]string
		want Fleet
		err  string // "" for none; else every error line, joined by "\n"
	}{
		{name: "off by default", env: map[string]string{}, want: Fleet{ClaimTTL: 10 * time.Second, KeyPrefix: "rtmp:"}},
		{name: "on", env: with(map[string]string{"FLEET_CLAIM_TTL_SECONDS": "2", "FLEET_KEY_PREFIX": "live:", "FLEET_REDIS_DOWN": "Refuse"}),
			want: Fleet{Use: true, ClaimTTL: 2 * time.Second, KeyPrefix: "live:", RefuseWhenRedisDown: true}},
		{name: "needs Redis", env: with(map[string]string{"REDIS_USE": "NO"}),
			err: "FLEET: FLEET=YES requires REDIS_USE=YES: the fleet keeps its claims in Redis"},
		{name: "needs RTMP_HOST", env: with(map[string]string{"RTMP_HOST": ""}),
			err: "RTMP_HOST: required when FLEET=YES: it names this box in the fleet, and must differ on every box"},
		{name: "needs both", env: map[string]string{"FLEET": "yes"},
			err: "FLEET: FLEET=YES requires REDIS_USE=YES: the fleet keeps its claims in Redis\n" +
				"RTMP_HOST: required when FLEET=YES: it names this box in the fleet, and must differ on every box"},
		{name: "host with a space", env: with(map[string]string{"RTMP_HOST": "box 1"}),
			err: `RTMP_HOST: "box 1" is not valid (want with FLEET=YES, 1 to 253 characters a-z A-Z 0-9 . - _ :)`},
		{name: "ttl zero", env: with(map[string]string{"FLEET_CLAIM_TTL_SECONDS": "0"}),
			err: `FLEET_CLAIM_TTL_SECONDS: "0" is not valid (want a whole number of seconds 1..3600)`},
		{name: "ttl fraction", env: with(map[string]string{"FLEET_CLAIM_TTL_SECONDS": "1.5"}),
			err: `FLEET_CLAIM_TTL_SECONDS: "1.5" is not valid (want a whole number of seconds 1..3600)`},
		{name: "prefix with a space", env: with(map[string]string{"FLEET_KEY_PREFIX": "a b"}),
			err: `FLEET_KEY_PREFIX: "a b" is not valid (want up to 64 printable ASCII characters without spaces)`},
		{name: "redis down policy", env: with(map[string]string{"FLEET_REDIS_DOWN": "maybe"}),
			err: `FLEET_REDIS_DOWN: "maybe" is not valid (want accept or refuse)`},
		{name: "drain", env: map[string]string{"DRAIN": "perhaps"},
			err: `DRAIN: "perhaps" is not valid (want YES or NO)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(env(tt.env))
			if tt.err != "" {
				if err == nil || err.Error() != tt.err || !errors.Is(err, ErrInvalid) {
					t.Fatalf("Parse: %v\nwant %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Fleet != tt.want {
				t.Errorf("Fleet = %+v, want %+v", c.Fleet, tt.want)
			}
		})
	}
	c, err := Parse(env(map[string]string{"DRAIN": "YES"}))
	if err != nil || !c.Drain {
		t.Errorf("DRAIN=YES: Drain %v, err %v", c.Drain, err)
	}
	if !strings.Contains(c.LogValue().String(), "fleet_claim_ttl_seconds=10") {
		t.Errorf("the log value shows no fleet settings: %s", c.LogValue())
	}
}
