// Package config holds the server's typed configuration and reads it, once,
// from environment variables and an optional env file.
//
// Every variable has a default (see Variables and
// etc/rtmp-server.env.example), so an empty environment is a working
// configuration. A variable that is unset, empty or only spaces takes its
// default; values are trimmed of surrounding spaces, except secrets, which
// are taken as given. Booleans accept YES or NO in any case, and also
// true/false, 1/0 and on/off. Numbers are whole decimal numbers unless a
// variable says otherwise.
//
// Parse checks every value and reports all problems at once, each naming
// the variable, the value (never for a secret) and what it accepts.
package config

import (
	"errors"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/access"
	"github.com/rtmp-server/rtmp-server/internal/forward"
)

// ErrInvalid is wrapped by every error about a variable's value.
var ErrInvalid = errors.New("config: invalid value")

// Config is the server's configuration. Each field names the variable it
// comes from; Parse fills and checks all of them, so a Config from Parse,
// Load or Default is valid.
type Config struct {
	// RTMPHost is sent to the callback as rtmp_host, to tell it which
	// server the event comes from. RTMP_HOST, default "".
	RTMPHost string
	// RTMPPort is the RTMP listening port, also sent to the callback as
	// rtmp_port. RTMP_PORT, default 1935.
	RTMPPort int
	// BindAddress is the address that RTMP and RTMPS listen on: an IP
	// address (IPv6 without brackets) or a host name; "" means every
	// interface. BIND_ADDRESS, default "".
	BindAddress string

	// SSLPort is the RTMPS listening port. SSL_PORT, default 443.
	SSLPort int
	// SSLCert and SSLKey are the paths of the PEM certificate chain and
	// private key. Both are set, enabling RTMPS, or both are empty.
	// SSL_CERT and SSL_KEY, default "".
	SSLCert string
	SSLKey  string
	// SSLCheckReload is how often the certificate files are checked for
	// changes; 0 means never. SSL_CHECK_RELOAD_SECONDS, default 60.
	SSLCheckReload time.Duration

	// ChunkSize is the outgoing RTMP chunk size in bytes.
	// RTMP_CHUNK_SIZE, default 128.
	ChunkSize int

	// LogRequests logs each connection and publish or play request.
	// LOG_REQUESTS, default YES.
	LogRequests bool
	// LogDebug logs debug messages. LOG_DEBUG, default NO.
	LogDebug bool

	// IDMaxLength is the maximum length of a channel name and of a stream
	// key. ID_MAX_LENGTH, default 128.
	IDMaxLength int
	// MaxIPConnections is the maximum number of concurrent connections
	// from one IP; 0 means unlimited. MAX_IP_CONCURRENT_CONNECTIONS,
	// default 4.
	MaxIPConnections int
	// MaxConnections is the maximum number of concurrent connections to
	// the whole server. MAX_CONNECTIONS, default 20000.
	MaxConnections int
	// ConcurrentLimitWhitelist holds the addresses that MaxIPConnections
	// does not apply to. CONCURRENT_LIMIT_WHITELIST, default empty.
	ConcurrentLimitWhitelist access.List
	// IPv6LimitPrefix is the prefix length by which MaxIPConnections counts
	// IPv6 clients: all addresses of one prefix share the limit. IPv4 is
	// counted per address. CONCURRENT_LIMIT_IPV6_PREFIX, default 64.
	IPv6LimitPrefix int
	// PlayWhitelist holds the addresses allowed to play streams.
	// RTMP_PLAY_WHITELIST, or its older name PLAY_ALLOWED_FROM; default
	// "*", everyone.
	PlayWhitelist access.List

	// CallbackURL is the http or https URL that start and stop events are
	// posted to; "" means no callback, and every publish is accepted.
	// CALLBACK_URL, default "".
	CallbackURL string
	// JWTSecret signs the events posted to CallbackURL, and is set
	// whenever CallbackURL is. JWT_SECRET.
	JWTSecret Secret
	// JWTSubject is the subject (sub) of those tokens.
	// CUSTOM_JWT_SUBJECT, default "rtmp_event".
	JWTSubject string
	// CallbackTimeout bounds each callback request.
	// CALLBACK_TIMEOUT_SECONDS, default 10.
	CallbackTimeout time.Duration

	// GOPCacheSizeMB is the size limit, in MiB, of the cache that lets a
	// new player start at the last keyframe; 0 disables it.
	// GOP_CACHE_SIZE_MB, default 256.
	GOPCacheSizeMB int
	// GOPCacheTotalMB bounds the GOP caches of all streams together, in
	// MiB; 0 means no limit. GOP_CACHE_TOTAL_MB, default 2048.
	GOPCacheTotalMB int

	// Redis configures the Pub/Sub command channel.
	Redis Redis

	// AdminAddress is the host:port of the monitoring HTTP listener; ""
	// turns it off. ADMIN_ADDRESS, default "127.0.0.1:9935"; set to empty
	// (unlike other variables, whose empty value means the default) or OFF
	// to turn it off.
	AdminAddress string
	// AdminToken, when set, is the bearer token the monitoring endpoints
	// require. ADMIN_TOKEN, default "".
	AdminToken Secret

	// ForwardURLs are the targets every publish is forwarded to: rtmp://
	// or rtmps:// URL templates with {channel}, {key} and {stream_id}.
	// FORWARD_URLS, comma-separated, default none.
	ForwardURLs []forward.Template
	// ForwardTLSInsecure turns off certificate verification of rtmps
	// forward targets, for lab use. FORWARD_TLS_INSECURE, default NO.
	ForwardTLSInsecure bool

	// Fleet configures the boxes sharing one Redis.
	Fleet Fleet
	// Drain refuses new publishes while the streams already live go on
	// (maintenance). DRAIN, default NO.
	Drain bool
}

// Redis configures the Redis Pub/Sub connection that commands such as
// kill-session arrive on.
type Redis struct {
	// Use enables the connection. REDIS_USE, default NO.
	Use bool
	// Host is the Redis server's host name or IP address (IPv6 without
	// brackets). REDIS_HOST, default "127.0.0.1".
	Host string
	// Port is the Redis server's port. REDIS_PORT, default 6379.
	Port int
	// Password authenticates to Redis, if set. REDIS_PASSWORD.
	Password Secret
	// Channel is the channel subscribed to. REDIS_CHANNEL, default
	// "rtmp_commands".
	Channel string
	// TLS connects over TLS. REDIS_TLS, default NO.
	TLS bool
}

// Addr returns the Redis server's address in the form net.Dial takes.
func (r Redis) Addr() string { return net.JoinHostPort(r.Host, strconv.Itoa(r.Port)) }

// LogValue shows the Redis settings with the password redacted.
func (r Redis) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Bool("redis_use", r.Use),
		slog.String("redis_host", r.Host),
		slog.Int("redis_port", r.Port),
		slog.Any("redis_password", r.Password),
		slog.String("redis_channel", r.Channel),
		slog.Bool("redis_tls", r.TLS),
	)
}

// RTMPAddr returns the RTMP listening address in the form net.Listen takes.
func (c Config) RTMPAddr() string {
	return net.JoinHostPort(c.BindAddress, strconv.Itoa(c.RTMPPort))
}

// SSLAddr returns the RTMPS listening address in the form net.Listen takes.
func (c Config) SSLAddr() string {
	return net.JoinHostPort(c.BindAddress, strconv.Itoa(c.SSLPort))
}

// TLSEnabled reports whether RTMPS is configured.
func (c Config) TLSEnabled() bool { return c.SSLCert != "" }

// GOPCacheBytes returns the GOP cache size limit in bytes; 0 means no cache.
func (c Config) GOPCacheBytes() int64 { return int64(c.GOPCacheSizeMB) << 20 }

// GOPCacheTotalBytes is GOPCacheTotalMB in bytes (0: no limit).
func (c Config) GOPCacheTotalBytes() int64 { return int64(c.GOPCacheTotalMB) << 20 }

// LogGroup is one group of related settings, as LogGroups gives them.
type LogGroup struct {
	Name  string      // what the settings are about: "rtmp", "callback", ...
	Attrs []slog.Attr // keyed by lower-case variable names
}

// LogGroups shows the configuration for the startup and reload log, one
// group of related settings per line, keyed by lower-case variable names,
// with secrets and any password in CallbackURL redacted. Every variable
// appears in exactly one group (PLAY_ALLOWED_FROM as rtmp_play_whitelist).
func (c Config) LogGroups() []LogGroup {
	r := c.Redis
	return []LogGroup{
		{"rtmp", []slog.Attr{
			slog.Int("rtmp_port", c.RTMPPort),
			slog.String("bind_address", c.BindAddress),
			slog.String("rtmp_host", c.RTMPHost),
			slog.Int("rtmp_chunk_size", c.ChunkSize),
		}},
		{"rtmps", []slog.Attr{
			slog.Int("ssl_port", c.SSLPort),
			slog.String("ssl_cert", c.SSLCert),
			slog.String("ssl_key", c.SSLKey),
			slog.Float64("ssl_check_reload_seconds", c.SSLCheckReload.Seconds()),
		}},
		{"limits", []slog.Attr{
			slog.Int("max_connections", c.MaxConnections),
			slog.Int("max_ip_concurrent_connections", c.MaxIPConnections),
			slog.Int("concurrent_limit_ipv6_prefix", c.IPv6LimitPrefix),
			slog.String("concurrent_limit_whitelist", c.ConcurrentLimitWhitelist.String()),
			slog.Int("id_max_length", c.IDMaxLength),
		}},
		{"play", []slog.Attr{
			slog.String("rtmp_play_whitelist", c.PlayWhitelist.String()),
			slog.Int("gop_cache_size_mb", c.GOPCacheSizeMB),
			slog.Int("gop_cache_total_mb", c.GOPCacheTotalMB),
		}},
		{"callback", []slog.Attr{
			slog.String("callback_url", redactURL(c.CallbackURL)),
			slog.Any("jwt_secret", c.JWTSecret),
			slog.String("custom_jwt_subject", c.JWTSubject),
			slog.Float64("callback_timeout_seconds", c.CallbackTimeout.Seconds()),
		}},
		{"redis", []slog.Attr{
			slog.Bool("redis_use", r.Use),
			slog.String("redis_host", r.Host),
			slog.Int("redis_port", r.Port),
			slog.Any("redis_password", r.Password),
			slog.String("redis_channel", r.Channel),
			slog.Bool("redis_tls", r.TLS),
		}},
		{"admin", []slog.Attr{
			slog.String("admin_address", c.AdminAddress),
			slog.Any("admin_token", c.AdminToken),
		}},
		{"forward", []slog.Attr{
			slog.String("forward_urls", forwardURLsText(c.ForwardURLs)),
			slog.Bool("forward_tls_insecure", c.ForwardTLSInsecure),
		}},
		{"log", []slog.Attr{
			slog.Bool("log_requests", c.LogRequests),
			slog.Bool("log_debug", c.LogDebug),
		}},
		{"fleet", append(c.Fleet.logAttrs(), slog.Bool("drain", c.Drain))},
	}
}

// LogValue shows the whole configuration as one value, the groups of
// LogGroups as nested groups, secrets redacted the same way.
func (c Config) LogValue() slog.Value {
	groups := c.LogGroups()
	attrs := make([]slog.Attr, len(groups))
	for i, g := range groups {
		attrs[i] = slog.Attr{Key: g.Name, Value: slog.GroupValue(g.Attrs...)}
	}
	return slog.GroupValue(attrs...)
}

// redactURL hides the password of a URL's user information, if any.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	if _, has := u.User.Password(); !has {
		return s
	}
	return u.Redacted()
}

// Default returns the configuration that an empty environment gives.
func Default() Config {
	c, err := Parse(func(string) (string, bool) { return "", false })
	if err != nil {
		panic("config: the defaults do not parse: " + err.Error())
	}
	return c
}
