package daemon

import (
	"reflect"
	"testing"

	"github.com/rtmp-server/rtmp-server/internal/access"
	"github.com/rtmp-server/rtmp-server/internal/config"
	"github.com/rtmp-server/rtmp-server/internal/server"
)

// TestServerOptionsDefaults: the server's own defaults are the
// configuration's, so a server built without the daemon behaves the same.
func TestServerOptionsDefaults(t *testing.T) {
	got, want := serverOptions(config.Default()), server.DefaultOptions()
	if !got.PlayWhitelist.Equal(want.PlayWhitelist) || !got.ConcurrentLimitWhitelist.Equal(want.ConcurrentLimitWhitelist) {
		t.Fatalf("allow-lists: %v / %v, want %v / %v", got.PlayWhitelist, got.ConcurrentLimitWhitelist, want.PlayWhitelist, want.ConcurrentLimitWhitelist)
	}
	got.PlayWhitelist, got.ConcurrentLimitWhitelist = access.List{}, access.List{}
	want.PlayWhitelist, want.ConcurrentLimitWhitelist = access.List{}, access.List{}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("serverOptions(config.Default()) = %+v\nserver.DefaultOptions() = %+v", got, want)
	}
}

// TestServerOptionsMapping: every server setting follows its variable.
func TestServerOptionsMapping(t *testing.T) {
	cfg := config.Default()
	cfg.ChunkSize = 4096
	cfg.IDMaxLength = 20
	cfg.MaxConnections = 7
	cfg.MaxIPConnections = 3
	cfg.ConcurrentLimitWhitelist = access.MustParseList("10.0.0.0/8")
	cfg.IPv6LimitPrefix = 56
	cfg.PlayWhitelist = access.MustParseList("127.0.0.1")
	cfg.GOPCacheSizeMB = 5
	cfg.GOPCacheTotalMB = 9
	cfg.LogRequests = false
	o := serverOptions(cfg)
	if o.ChunkSize != 4096 || o.IDMaxLength != 20 || o.MaxConnections != 7 || o.MaxIPConnections != 3 ||
		o.IPv6LimitPrefix != 56 || o.GOPCacheBytes != 5<<20 || o.GOPCacheTotalBytes != 9<<20 || o.LogRequests ||
		!o.ConcurrentLimitWhitelist.Equal(cfg.ConcurrentLimitWhitelist) || !o.PlayWhitelist.Equal(cfg.PlayWhitelist) {
		t.Fatalf("serverOptions = %+v", o)
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
}
