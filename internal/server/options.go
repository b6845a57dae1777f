package server

import (
	"errors"
	"fmt"

	"github.com/rtmp-server/rtmp-server/internal/access"
	"github.com/rtmp-server/rtmp-server/internal/chunk"
)

// Defaults of Options, the same as the configuration's (see
// etc/rtmp-server.env).
const (
	DefaultChunkSize          = 128
	DefaultIDMaxLength        = 128
	DefaultMaxConnections     = 20000
	DefaultMaxIPConnections   = 4
	DefaultIPv6LimitPrefix    = 64
	DefaultGOPCacheBytes      = 256 << 20
	DefaultGOPCacheTotalBytes = 2048 << 20
)

// Options are the settings of a server that may change while it runs:
// New takes the first ones and SetOptions replaces them (on a reload).
// New values apply to sessions that arrive and to checks made from then on;
// a connection keeps the chunk size it was told at connect.
type Options struct {
	// ChunkSize is the outgoing chunk size: told to each connection at
	// connect, and used for the media of streams published from then on.
	ChunkSize int
	// IDMaxLength is the longest channel name and stream key accepted.
	IDMaxLength int
	// MaxConnections bounds the connections to the server; past it a new
	// connection is closed at once.
	MaxConnections int
	// MaxIPConnections bounds the connections from one address (IPv6: one
	// prefix of IPv6LimitPrefix bits); 0 means no bound. Connections over
	// it are refused at connect.
	MaxIPConnections int
	// ConcurrentLimitWhitelist holds the addresses MaxIPConnections does
	// not apply to.
	ConcurrentLimitWhitelist access.List
	// IPv6LimitPrefix is the prefix length IPv6 clients are counted by.
	IPv6LimitPrefix int
	// PlayWhitelist holds the addresses allowed to play.
	PlayWhitelist access.List
	// GOPCacheBytes bounds one stream's GOP cache; 0 disables it.
	GOPCacheBytes int64
	// GOPCacheTotalBytes bounds the GOP caches of all streams together; 0
	// means no bound.
	GOPCacheTotalBytes int64
	// LogRequests turns on the request log: a line for each connection
	// and each publish or play request. The lines are written by an
	// observer (RequestLog) that reads this option per event.
	LogRequests bool
}

// DefaultOptions returns the default settings: everyone may play, four
// connections per address.
func DefaultOptions() Options {
	return Options{
		ChunkSize:          DefaultChunkSize,
		IDMaxLength:        DefaultIDMaxLength,
		MaxConnections:     DefaultMaxConnections,
		MaxIPConnections:   DefaultMaxIPConnections,
		IPv6LimitPrefix:    DefaultIPv6LimitPrefix,
		PlayWhitelist:      access.MustParseList("*"),
		GOPCacheBytes:      DefaultGOPCacheBytes,
		GOPCacheTotalBytes: DefaultGOPCacheTotalBytes,
		LogRequests:        true,
	}
}

// ErrInvalidOptions is wrapped by the errors of New and SetOptions about a
// value of Options.
var ErrInvalidOptions = errors.New("server: invalid options")

// Validate reports the first value out of its range, naming the field.
func (o Options) Validate() error {
	bad := func(field string, v any, want string) error {
		return fmt.Errorf("%w: %s is %v, want %s", ErrInvalidOptions, field, v, want)
	}
	switch {
	case o.ChunkSize < 1 || o.ChunkSize > chunk.MaxChunkSize:
		return bad("ChunkSize", o.ChunkSize, fmt.Sprintf("1..%d", chunk.MaxChunkSize))
	case o.IDMaxLength < 1:
		return bad("IDMaxLength", o.IDMaxLength, "at least 1")
	case o.MaxConnections < 1:
		return bad("MaxConnections", o.MaxConnections, "at least 1")
	case o.MaxIPConnections < 0:
		return bad("MaxIPConnections", o.MaxIPConnections, "0 (no bound) or more")
	case o.IPv6LimitPrefix < 1 || o.IPv6LimitPrefix > 128:
		return bad("IPv6LimitPrefix", o.IPv6LimitPrefix, "1..128")
	case o.GOPCacheBytes < 0:
		return bad("GOPCacheBytes", o.GOPCacheBytes, "0 (no cache) or more")
	case o.GOPCacheTotalBytes < 0:
		return bad("GOPCacheTotalBytes", o.GOPCacheTotalBytes, "0 (no bound) or more")
	}
	return nil
}
