package daemon

import (
	"github.com/rtmp-server/rtmp-server/internal/config"
	"github.com/rtmp-server/rtmp-server/internal/server"
)

// serverOptions maps the configuration onto the server's options, as
// callbackConfig does for the event callbacks.
func serverOptions(cfg config.Config) server.Options {
	return server.Options{
		ChunkSize:                cfg.ChunkSize,
		IDMaxLength:              cfg.IDMaxLength,
		MaxConnections:           cfg.MaxConnections,
		MaxIPConnections:         cfg.MaxIPConnections,
		ConcurrentLimitWhitelist: cfg.ConcurrentLimitWhitelist,
		IPv6LimitPrefix:          cfg.IPv6LimitPrefix,
		PlayWhitelist:            cfg.PlayWhitelist,
		GOPCacheBytes:            cfg.GOPCacheBytes(),
		GOPCacheTotalBytes:       cfg.GOPCacheTotalBytes(),
		LogRequests:              cfg.LogRequests,
	}
}
