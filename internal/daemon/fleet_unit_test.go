package daemon

import (
	"reflect"
	"testing"

	"github.com/rtmp-server/rtmp-server/internal/config"
)

func TestFleetRestartOnly(t *testing.T) {
	fleetOn := config.Default()
	fleetOn.Fleet.Use, fleetOn.Redis.Use, fleetOn.RTMPHost = true, true, "box-a"
	tests := []struct {
		name string
		old  config.Config
		edit func(*config.Config)
		want []string
	}{
		{"nothing", fleetOn, func(*config.Config) {}, nil},
		{"drain applies at once", fleetOn, func(c *config.Config) { c.Drain = true }, nil},
		{"ttl", fleetOn, func(c *config.Config) { c.Fleet.ClaimTTL *= 2 }, []string{"FLEET"}},
		{"fleet off", fleetOn, func(c *config.Config) { c.Fleet.Use = false }, []string{"FLEET"}},
		{"host", fleetOn, func(c *config.Config) { c.RTMPHost = "box-b" }, []string{"RTMP_HOST (the fleet's name of this box)"}},
		{"host without a fleet", config.Default(), func(c *config.Config) { c.RTMPHost = "box-b" }, nil},
		{"redis", fleetOn, func(c *config.Config) { c.Redis.Port = 6380 },
			[]string{"REDIS_* (the fleet's connection; the command subscriber reconnects at once)"}},
		{"redis without a fleet", config.Default(), func(c *config.Config) { c.Redis.Port = 6380 }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.old
			tt.edit(&cfg)
			if got := fleetRestartOnly(tt.old, cfg); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
