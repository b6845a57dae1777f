package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/access"
)

// env turns a map into a lookup function like os.LookupEnv.
func env(m map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

func TestDefault(t *testing.T) {
	want := Config{
		RTMPHost:                 "",
		RTMPPort:                 1935,
		BindAddress:              "",
		SSLPort:                  443,
		SSLCheckReload:           60 * time.Second,
		ChunkSize:                128,
		LogRequests:              true,
		LogDebug:                 false,
		IDMaxLength:              128,
		MaxIPConnections:         4,
		MaxConnections:           20000,
		GOPCacheTotalMB:          2048,
		ConcurrentLimitWhitelist: access.List{},
		IPv6LimitPrefix:          64,
		PlayWhitelist:            access.MustParseList("*"),
		JWTSubject:               "rtmp_event",
		CallbackTimeout:          10 * time.Second,
		GOPCacheSizeMB:           256,
		Redis: Redis{
			Host:    "127.0.0.1",
			Port:    6379,
			Channel: "rtmp_commands",
		},
		AdminAddress: "127.0.0.1:9935",
		Fleet:        Fleet{ClaimTTL: 10 * time.Second, KeyPrefix: "rtmp:"},
	}
	got := Default()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Default() =\n%+v\nwant\n%+v", got, want)
	}
	if got.RTMPAddr() != ":1935" || got.SSLAddr() != ":443" || got.Redis.Addr() != "127.0.0.1:6379" {
		t.Errorf("addresses: %q %q %q", got.RTMPAddr(), got.SSLAddr(), got.Redis.Addr())
	}
	if got.TLSEnabled() {
		t.Error("TLS enabled by default")
	}
	if got.GOPCacheBytes() != 256<<20 {
		t.Errorf("GOPCacheBytes() = %d", got.GOPCacheBytes())
	}
	if !got.PlayWhitelist.Any() || !got.ConcurrentLimitWhitelist.IsEmpty() {
		t.Errorf("whitelists: play %q, limit %q", got.PlayWhitelist, got.ConcurrentLimitWhitelist)
	}
}

var parseTests = []struct {
	name string
	env  map[string]string
	want func(c *Config) // changes from Default(); nil when err is set
	err  string          // substring of the error; "" for success
}{
	{name: "empty environment", env: nil, want: func(*Config) {}},
	{name: "empty values mean defaults", env: map[string]string{
		"RTMP_PORT": "", "LOG_REQUESTS": "  ", "RTMP_PLAY_WHITELIST": "", "CUSTOM_JWT_SUBJECT": " ", "REDIS_HOST": "",
	}, want: func(*Config) {}},
	{name: "unrelated variables ignored", env: map[string]string{"PATH": "/bin", "HOME": "/root"}, want: func(*Config) {}},

	// RTMP_HOST
	{name: "rtmp host", env: map[string]string{"RTMP_HOST": " live.example.com "}, want: func(c *Config) { c.RTMPHost = "live.example.com" }},

	// RTMP_PORT
	{name: "rtmp port", env: map[string]string{"RTMP_PORT": "1936"}, want: func(c *Config) { c.RTMPPort = 1936 }},
	{name: "rtmp port trimmed", env: map[string]string{"RTMP_PORT": " 19350 "}, want: func(c *Config) { c.RTMPPort = 19350 }},
	{name: "rtmp port 1", env: map[string]string{"RTMP_PORT": "1"}, want: func(c *Config) { c.RTMPPort = 1 }},
	{name: "rtmp port 65535", env: map[string]string{"RTMP_PORT": "65535"}, want: func(c *Config) { c.RTMPPort = 65535 }},
	{name: "rtmp port abc", env: map[string]string{"RTMP_PORT": "abc"}, err: `RTMP_PORT: "abc" is not a port number (want 1..65535)`},
	{name: "rtmp port 0", env: map[string]string{"RTMP_PORT": "0"}, err: `RTMP_PORT: "0" is not a port number`},
	{name: "rtmp port 65536", env: map[string]string{"RTMP_PORT": "65536"}, err: `RTMP_PORT: "65536" is not a port number`},
	{name: "rtmp port negative", env: map[string]string{"RTMP_PORT": "-1935"}, err: `RTMP_PORT: "-1935"`},
	{name: "rtmp port decimal", env: map[string]string{"RTMP_PORT": "1935.5"}, err: `RTMP_PORT: "1935.5"`},
	{name: "rtmp port overflow", env: map[string]string{"RTMP_PORT": "99999999999999999999999"}, err: `RTMP_PORT: "99999999999999999999999"`},
	{name: "rtmp port hex", env: map[string]string{"RTMP_PORT": "0x78f"}, err: `RTMP_PORT: "0x78f"`},

	// BIND_ADDRESS
	{name: "bind ipv4", env: map[string]string{"BIND_ADDRESS": "127.0.0.1"}, want: func(c *Config) { c.BindAddress = "127.0.0.1" }},
	{name: "bind ipv6", env: map[string]string{"BIND_ADDRESS": "::1"}, want: func(c *Config) { c.BindAddress = "::1" }},
	{name: "bind ipv6 brackets", env: map[string]string{"BIND_ADDRESS": "[::1]"}, want: func(c *Config) { c.BindAddress = "::1" }},
	{name: "bind ipv6 zone", env: map[string]string{"BIND_ADDRESS": "fe80::1%eth0"}, want: func(c *Config) { c.BindAddress = "fe80::1%eth0" }},
	{name: "bind any ipv6", env: map[string]string{"BIND_ADDRESS": "::"}, want: func(c *Config) { c.BindAddress = "::" }},
	{name: "bind hostname", env: map[string]string{"BIND_ADDRESS": "localhost"}, want: func(c *Config) { c.BindAddress = "localhost" }},
	{name: "bind fqdn", env: map[string]string{"BIND_ADDRESS": "rtmp-1.example.com."}, want: func(c *Config) { c.BindAddress = "rtmp-1.example.com." }},
	{name: "bind with port", env: map[string]string{"BIND_ADDRESS": "127.0.0.1:1935"}, err: `BIND_ADDRESS: "127.0.0.1:1935" is not valid (want an IP address or a host name, without a port)`},
	{name: "bind ipv6 with port", env: map[string]string{"BIND_ADDRESS": "[::1]:1935"}, err: `BIND_ADDRESS: "[::1]:1935"`},
	{name: "bind ipv4 brackets", env: map[string]string{"BIND_ADDRESS": "[127.0.0.1]"}, err: `BIND_ADDRESS: "[127.0.0.1]"`},
	{name: "bind space", env: map[string]string{"BIND_ADDRESS": "local host"}, err: `BIND_ADDRESS: "local host"`},
	{name: "bind bad ipv4", env: map[string]string{"BIND_ADDRESS": "10.0.0.300"}, err: `BIND_ADDRESS: "10.0.0.300"`},
	{name: "bind url", env: map[string]string{"BIND_ADDRESS": "rtmp://host"}, err: `BIND_ADDRESS: "rtmp://host"`},
	{name: "bind hyphen", env: map[string]string{"BIND_ADDRESS": "-host"}, err: `BIND_ADDRESS: "-host"`},

	// SSL_PORT, SSL_CERT, SSL_KEY, SSL_CHECK_RELOAD_SECONDS
	{name: "ssl port", env: map[string]string{"SSL_PORT": "8443"}, want: func(c *Config) { c.SSLPort = 8443 }},
	{name: "ssl port bad", env: map[string]string{"SSL_PORT": "https"}, err: `SSL_PORT: "https" is not a port number (want 1..65535)`},
	{name: "ssl cert and key", env: map[string]string{"SSL_CERT": "/etc/ssl/cert.pem", "SSL_KEY": "/etc/ssl/key.pem"}, want: func(c *Config) {
		c.SSLCert, c.SSLKey = "/etc/ssl/cert.pem", "/etc/ssl/key.pem"
	}},
	{name: "ssl cert alone", env: map[string]string{"SSL_CERT": "/etc/ssl/cert.pem"}, err: `SSL_CERT and SSL_KEY: set both to enable RTMPS, or neither (SSL_CERT is set, SSL_KEY is not)`},
	{name: "ssl key alone", env: map[string]string{"SSL_KEY": "/etc/ssl/key.pem"}, err: `(SSL_KEY is set, SSL_CERT is not)`},
	{name: "ssl reload", env: map[string]string{"SSL_CHECK_RELOAD_SECONDS": "3600"}, want: func(c *Config) { c.SSLCheckReload = time.Hour }},
	{name: "ssl reload off", env: map[string]string{"SSL_CHECK_RELOAD_SECONDS": "0"}, want: func(c *Config) { c.SSLCheckReload = 0 }},
	{name: "ssl reload one year", env: map[string]string{"SSL_CHECK_RELOAD_SECONDS": "31536000"}, want: func(c *Config) { c.SSLCheckReload = 365 * 24 * time.Hour }},
	{name: "ssl reload too long", env: map[string]string{"SSL_CHECK_RELOAD_SECONDS": "31536001"}, err: `SSL_CHECK_RELOAD_SECONDS: "31536001" is not valid (want a whole number of seconds 0..31536000, 0 = never check)`},
	{name: "ssl reload negative", env: map[string]string{"SSL_CHECK_RELOAD_SECONDS": "-1"}, err: `SSL_CHECK_RELOAD_SECONDS: "-1"`},
	{name: "ssl reload decimal", env: map[string]string{"SSL_CHECK_RELOAD_SECONDS": "1.5"}, err: `SSL_CHECK_RELOAD_SECONDS: "1.5"`},
	{name: "ssl reload duration", env: map[string]string{"SSL_CHECK_RELOAD_SECONDS": "60s"}, err: `SSL_CHECK_RELOAD_SECONDS: "60s"`},

	// RTMP_CHUNK_SIZE
	{name: "chunk size", env: map[string]string{"RTMP_CHUNK_SIZE": "5000"}, want: func(c *Config) { c.ChunkSize = 5000 }},
	{name: "chunk size max", env: map[string]string{"RTMP_CHUNK_SIZE": "65536"}, want: func(c *Config) { c.ChunkSize = 65536 }},
	{name: "chunk size small", env: map[string]string{"RTMP_CHUNK_SIZE": "127"}, err: `RTMP_CHUNK_SIZE: "127" is not valid (want a whole number 128..65536)`},
	{name: "chunk size big", env: map[string]string{"RTMP_CHUNK_SIZE": "65537"}, err: `RTMP_CHUNK_SIZE: "65537"`},
	{name: "chunk size text", env: map[string]string{"RTMP_CHUNK_SIZE": "4k"}, err: `RTMP_CHUNK_SIZE: "4k"`},

	// LOG_REQUESTS, LOG_DEBUG
	{name: "log requests no", env: map[string]string{"LOG_REQUESTS": "NO"}, want: func(c *Config) { c.LogRequests = false }},
	{name: "log requests lower no", env: map[string]string{"LOG_REQUESTS": "no"}, want: func(c *Config) { c.LogRequests = false }},
	{name: "log requests false", env: map[string]string{"LOG_REQUESTS": "False"}, want: func(c *Config) { c.LogRequests = false }},
	{name: "log requests 0", env: map[string]string{"LOG_REQUESTS": "0"}, want: func(c *Config) { c.LogRequests = false }},
	{name: "log requests off", env: map[string]string{"LOG_REQUESTS": "OFF"}, want: func(c *Config) { c.LogRequests = false }},
	{name: "log debug yes", env: map[string]string{"LOG_DEBUG": "YES"}, want: func(c *Config) { c.LogDebug = true }},
	{name: "log debug Yes", env: map[string]string{"LOG_DEBUG": " Yes "}, want: func(c *Config) { c.LogDebug = true }},
	{name: "log debug true", env: map[string]string{"LOG_DEBUG": "true"}, want: func(c *Config) { c.LogDebug = true }},
	{name: "log debug 1", env: map[string]string{"LOG_DEBUG": "1"}, want: func(c *Config) { c.LogDebug = true }},
	{name: "log debug on", env: map[string]string{"LOG_DEBUG": "on"}, want: func(c *Config) { c.LogDebug = true }},
	{name: "log debug y", env: map[string]string{"LOG_DEBUG": "y"}, err: `LOG_DEBUG: "y" is not valid (want YES or NO)`},
	{name: "log requests maybe", env: map[string]string{"LOG_REQUESTS": "maybe"}, err: `LOG_REQUESTS: "maybe" is not valid (want YES or NO)`},
	{name: "log debug 2", env: map[string]string{"LOG_DEBUG": "2"}, err: `LOG_DEBUG: "2"`},

	// ID_MAX_LENGTH
	{name: "id max length", env: map[string]string{"ID_MAX_LENGTH": "64"}, want: func(c *Config) { c.IDMaxLength = 64 }},
	{name: "id max length 1", env: map[string]string{"ID_MAX_LENGTH": "1"}, want: func(c *Config) { c.IDMaxLength = 1 }},
	{name: "id max length 4096", env: map[string]string{"ID_MAX_LENGTH": "4096"}, want: func(c *Config) { c.IDMaxLength = 4096 }},
	{name: "id max length 0", env: map[string]string{"ID_MAX_LENGTH": "0"}, err: `ID_MAX_LENGTH: "0" is not valid (want a whole number 1..4096)`},
	{name: "id max length big", env: map[string]string{"ID_MAX_LENGTH": "4097"}, err: `ID_MAX_LENGTH: "4097"`},

	// MAX_IP_CONCURRENT_CONNECTIONS
	{name: "max ip connections", env: map[string]string{"MAX_IP_CONCURRENT_CONNECTIONS": "10"}, want: func(c *Config) { c.MaxIPConnections = 10 }},
	{name: "max ip connections unlimited", env: map[string]string{"MAX_IP_CONCURRENT_CONNECTIONS": "0"}, want: func(c *Config) { c.MaxIPConnections = 0 }},
	{name: "max ip connections negative", env: map[string]string{"MAX_IP_CONCURRENT_CONNECTIONS": "-1"}, err: `MAX_IP_CONCURRENT_CONNECTIONS: "-1" is not valid (want a whole number >= 0, 0 = unlimited)`},
	{name: "max ip connections decimal", env: map[string]string{"MAX_IP_CONCURRENT_CONNECTIONS": "1.5"}, err: `MAX_IP_CONCURRENT_CONNECTIONS: "1.5"`},
	{name: "max ip connections abc", env: map[string]string{"MAX_IP_CONCURRENT_CONNECTIONS": "abc"}, err: `MAX_IP_CONCURRENT_CONNECTIONS: "abc"`},
	// CONCURRENT_LIMIT_IPV6_PREFIX
	{name: "ipv6 prefix 48", env: map[string]string{"CONCURRENT_LIMIT_IPV6_PREFIX": "48"}, want: func(c *Config) { c.IPv6LimitPrefix = 48 }},
	{name: "ipv6 prefix 128", env: map[string]string{"CONCURRENT_LIMIT_IPV6_PREFIX": "128"}, want: func(c *Config) { c.IPv6LimitPrefix = 128 }},
	{name: "ipv6 prefix 0", env: map[string]string{"CONCURRENT_LIMIT_IPV6_PREFIX": "0"}, err: `CONCURRENT_LIMIT_IPV6_PREFIX: "0" is not valid (want a prefix length 1..128)`},
	{name: "ipv6 prefix 129", env: map[string]string{"CONCURRENT_LIMIT_IPV6_PREFIX": "129"}, err: `CONCURRENT_LIMIT_IPV6_PREFIX: "129" is not valid (want a prefix length 1..128)`},
	{name: "ipv6 prefix slash", env: map[string]string{"CONCURRENT_LIMIT_IPV6_PREFIX": "/64"}, err: `CONCURRENT_LIMIT_IPV6_PREFIX: "/64" is not valid`},
	{name: "max ip connections overflow", env: map[string]string{"MAX_IP_CONCURRENT_CONNECTIONS": "9223372036854775808"}, err: `MAX_IP_CONCURRENT_CONNECTIONS: "9223372036854775808"`},

	// CONCURRENT_LIMIT_WHITELIST
	{name: "limit whitelist", env: map[string]string{"CONCURRENT_LIMIT_WHITELIST": "127.0.0.1,10.0.0.0/8"}, want: func(c *Config) {
		c.ConcurrentLimitWhitelist = access.MustParseList("10.0.0.0/8,127.0.0.1")
	}},
	{name: "limit whitelist star", env: map[string]string{"CONCURRENT_LIMIT_WHITELIST": "*"}, want: func(c *Config) {
		c.ConcurrentLimitWhitelist = access.MustParseList("*")
	}},
	{name: "limit whitelist ipv6", env: map[string]string{"CONCURRENT_LIMIT_WHITELIST": "::1, fd00::/8"}, want: func(c *Config) {
		c.ConcurrentLimitWhitelist = access.MustParseList("::1,fd00::/8")
	}},
	{name: "limit whitelist bad", env: map[string]string{"CONCURRENT_LIMIT_WHITELIST": "10.0.0.0/8,10.0.0.300"}, err: `CONCURRENT_LIMIT_WHITELIST: access: bad list entry "10.0.0.300": want an IP address, a CIDR prefix or *`},
	{name: "limit whitelist bad prefix", env: map[string]string{"CONCURRENT_LIMIT_WHITELIST": "1.2.3.4/33"}, err: `CONCURRENT_LIMIT_WHITELIST: access: bad list entry "1.2.3.4/33"`},

	// RTMP_PLAY_WHITELIST, PLAY_ALLOWED_FROM
	{name: "play whitelist", env: map[string]string{"RTMP_PLAY_WHITELIST": "127.0.0.1,10.0.0.0/8"}, want: func(c *Config) {
		c.PlayWhitelist = access.MustParseList("127.0.0.1,10.0.0.0/8")
	}},
	{name: "play whitelist bare ip", env: map[string]string{"RTMP_PLAY_WHITELIST": "192.0.2.7"}, want: func(c *Config) {
		c.PlayWhitelist = access.MustParseList("192.0.2.7")
	}},
	{name: "play allowed from", env: map[string]string{"PLAY_ALLOWED_FROM": "10.0.0.0/8"}, want: func(c *Config) {
		c.PlayWhitelist = access.MustParseList("10.0.0.0/8")
	}},
	{name: "play both equal", env: map[string]string{"PLAY_ALLOWED_FROM": "10.0.0.0/8, 127.0.0.1", "RTMP_PLAY_WHITELIST": "127.0.0.1/32,10.0.0.0/8"}, want: func(c *Config) {
		c.PlayWhitelist = access.MustParseList("10.0.0.0/8,127.0.0.1")
	}},
	{name: "play both star", env: map[string]string{"PLAY_ALLOWED_FROM": "*", "RTMP_PLAY_WHITELIST": "*"}, want: func(*Config) {}},
	{name: "play both differ", env: map[string]string{"PLAY_ALLOWED_FROM": "*", "RTMP_PLAY_WHITELIST": "10.0.0.0/8"},
		err: `RTMP_PLAY_WHITELIST and PLAY_ALLOWED_FROM: both set, to different lists ("10.0.0.0/8" and "*"); set only RTMP_PLAY_WHITELIST`},
	{name: "play alias empty", env: map[string]string{"PLAY_ALLOWED_FROM": "", "RTMP_PLAY_WHITELIST": "10.0.0.0/8"}, want: func(c *Config) {
		c.PlayWhitelist = access.MustParseList("10.0.0.0/8")
	}},
	{name: "play whitelist bad", env: map[string]string{"RTMP_PLAY_WHITELIST": "localhost"}, err: `RTMP_PLAY_WHITELIST: access: bad list entry "localhost"`},
	{name: "play alias bad", env: map[string]string{"PLAY_ALLOWED_FROM": "10.0.0.0/40"}, err: `PLAY_ALLOWED_FROM: access: bad list entry "10.0.0.0/40"`},

	// CALLBACK_URL, JWT_SECRET, CUSTOM_JWT_SUBJECT, CALLBACK_TIMEOUT_SECONDS
	{name: "callback", env: map[string]string{"CALLBACK_URL": "https://auth.example.com/rtmp?x=1", "JWT_SECRET": "s3cret"}, want: func(c *Config) {
		c.CallbackURL, c.JWTSecret = "https://auth.example.com/rtmp?x=1", "s3cret"
	}},
	{name: "callback http port", env: map[string]string{"CALLBACK_URL": "http://127.0.0.1:8080/events", "JWT_SECRET": "k"}, want: func(c *Config) {
		c.CallbackURL, c.JWTSecret = "http://127.0.0.1:8080/events", "k"
	}},
	{name: "callback ipv6", env: map[string]string{"CALLBACK_URL": "http://[::1]:8080/", "JWT_SECRET": "k"}, want: func(c *Config) {
		c.CallbackURL, c.JWTSecret = "http://[::1]:8080/", "k"
	}},
	{name: "callback upper scheme", env: map[string]string{"CALLBACK_URL": "HTTPS://auth.example.com/", "JWT_SECRET": "k"}, want: func(c *Config) {
		c.CallbackURL, c.JWTSecret = "HTTPS://auth.example.com/", "k"
	}},
	{name: "secret without callback", env: map[string]string{"JWT_SECRET": "k"}, want: func(c *Config) { c.JWTSecret = "k" }},
	{name: "secret kept as given", env: map[string]string{"JWT_SECRET": " spaced secret "}, want: func(c *Config) { c.JWTSecret = " spaced secret " }},
	{name: "callback without secret", env: map[string]string{"CALLBACK_URL": "https://auth.example.com/"}, err: "JWT_SECRET: required when CALLBACK_URL is set"},
	{name: "callback with blank secret", env: map[string]string{"CALLBACK_URL": "https://auth.example.com/", "JWT_SECRET": "   "}, err: "JWT_SECRET: required when CALLBACK_URL is set"},
	{name: "callback relative", env: map[string]string{"CALLBACK_URL": "/events", "JWT_SECRET": "k"}, err: `CALLBACK_URL: "/events" is not valid (want an absolute http:// or https:// URL with a host)`},
	{name: "callback no scheme", env: map[string]string{"CALLBACK_URL": "auth.example.com/events", "JWT_SECRET": "k"}, err: `CALLBACK_URL: "auth.example.com/events"`},
	{name: "callback ftp", env: map[string]string{"CALLBACK_URL": "ftp://auth.example.com/", "JWT_SECRET": "k"}, err: `CALLBACK_URL: "ftp://auth.example.com/"`},
	{name: "callback no host", env: map[string]string{"CALLBACK_URL": "https:///events", "JWT_SECRET": "k"}, err: `CALLBACK_URL: "https:///events"`},
	{name: "callback port only", env: map[string]string{"CALLBACK_URL": "http://:8080/", "JWT_SECRET": "k"}, err: `CALLBACK_URL: "http://:8080/"`},
	{name: "callback unparsable", env: map[string]string{"CALLBACK_URL": "http://[::1/", "JWT_SECRET": "k"}, err: `CALLBACK_URL: "http://[::1/" is not valid`},
	{name: "callback password redacted", env: map[string]string{"CALLBACK_URL": "ftp://user:hunter2@example.com/", "JWT_SECRET": "k"}, err: `CALLBACK_URL: "ftp://user:xxxxx@example.com/"`},
	{name: "jwt subject", env: map[string]string{"CUSTOM_JWT_SUBJECT": "my_subject"}, want: func(c *Config) { c.JWTSubject = "my_subject" }},
	{name: "callback timeout", env: map[string]string{"CALLBACK_TIMEOUT_SECONDS": "30"}, want: func(c *Config) { c.CallbackTimeout = 30 * time.Second }},
	{name: "callback timeout decimal", env: map[string]string{"CALLBACK_TIMEOUT_SECONDS": "2.5"}, want: func(c *Config) { c.CallbackTimeout = 2500 * time.Millisecond }},
	{name: "callback timeout min", env: map[string]string{"CALLBACK_TIMEOUT_SECONDS": "1"}, want: func(c *Config) { c.CallbackTimeout = time.Second }},
	{name: "callback timeout max", env: map[string]string{"CALLBACK_TIMEOUT_SECONDS": "300.0"}, want: func(c *Config) { c.CallbackTimeout = 300 * time.Second }},
	{name: "callback timeout small", env: map[string]string{"CALLBACK_TIMEOUT_SECONDS": "0.5"}, err: `CALLBACK_TIMEOUT_SECONDS: "0.5" is not valid (want seconds 1..300, decimals allowed)`},
	{name: "callback timeout big", env: map[string]string{"CALLBACK_TIMEOUT_SECONDS": "300.001"}, err: `CALLBACK_TIMEOUT_SECONDS: "300.001"`},
	{name: "callback timeout duration", env: map[string]string{"CALLBACK_TIMEOUT_SECONDS": "10s"}, err: `CALLBACK_TIMEOUT_SECONDS: "10s"`},
	{name: "callback timeout exponent", env: map[string]string{"CALLBACK_TIMEOUT_SECONDS": "1e1"}, err: `CALLBACK_TIMEOUT_SECONDS: "1e1"`},
	{name: "callback timeout nan", env: map[string]string{"CALLBACK_TIMEOUT_SECONDS": "NaN"}, err: `CALLBACK_TIMEOUT_SECONDS: "NaN"`},
	{name: "callback timeout hex", env: map[string]string{"CALLBACK_TIMEOUT_SECONDS": "0x1p3"}, err: `CALLBACK_TIMEOUT_SECONDS: "0x1p3"`},

	// GOP_CACHE_SIZE_MB
	{name: "gop cache off", env: map[string]string{"GOP_CACHE_SIZE_MB": "0"}, want: func(c *Config) { c.GOPCacheSizeMB = 0 }},
	{name: "gop cache max", env: map[string]string{"GOP_CACHE_SIZE_MB": "65536"}, want: func(c *Config) { c.GOPCacheSizeMB = 65536 }},
	{name: "gop cache big", env: map[string]string{"GOP_CACHE_SIZE_MB": "65537"}, err: `GOP_CACHE_SIZE_MB: "65537" is not valid (want a whole number of MiB 0..65536, 0 = no cache)`},
	{name: "gop cache negative", env: map[string]string{"GOP_CACHE_SIZE_MB": "-5"}, err: `GOP_CACHE_SIZE_MB: "-5"`},
	{name: "gop total off", env: map[string]string{"GOP_CACHE_TOTAL_MB": "0"}, want: func(c *Config) { c.GOPCacheTotalMB = 0 }},
	{name: "gop total bad", env: map[string]string{"GOP_CACHE_TOTAL_MB": "lots"}, err: `GOP_CACHE_TOTAL_MB: "lots"`},

	// Redis
	{name: "redis", env: map[string]string{
		"REDIS_USE": "YES", "REDIS_HOST": "redis.internal", "REDIS_PORT": "6380",
		"REDIS_PASSWORD": "pw", "REDIS_CHANNEL": "cmds", "REDIS_TLS": "yes",
	}, want: func(c *Config) {
		c.Redis = Redis{Use: true, Host: "redis.internal", Port: 6380, Password: "pw", Channel: "cmds", TLS: true}
	}},
	{name: "redis compose service name", env: map[string]string{"REDIS_HOST": "redis_cache"}, want: func(c *Config) { c.Redis.Host = "redis_cache" }},
	{name: "redis ipv6 brackets", env: map[string]string{"REDIS_HOST": "[fd00::6]"}, want: func(c *Config) { c.Redis.Host = "fd00::6" }},
	{name: "redis use bad", env: map[string]string{"REDIS_USE": "enabled"}, err: `REDIS_USE: "enabled" is not valid (want YES or NO)`},
	{name: "redis tls bad", env: map[string]string{"REDIS_TLS": "tls"}, err: `REDIS_TLS: "tls" is not valid (want YES or NO)`},
	{name: "redis port bad", env: map[string]string{"REDIS_PORT": "70000"}, err: `REDIS_PORT: "70000" is not a port number (want 1..65535)`},
	{name: "redis host with port", env: map[string]string{"REDIS_HOST": "redis:6379"}, err: `REDIS_HOST: "redis:6379" is not valid (want an IP address or a host name, without a port)`},
}

func TestParse(t *testing.T) {
	for _, tt := range parseTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(env(tt.env))
			if tt.err != "" {
				if err == nil {
					t.Fatalf("Parse succeeded, want error containing %q", tt.err)
				}
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("error %v does not wrap ErrInvalid", err)
				}
				if !strings.Contains(err.Error(), tt.err) {
					t.Errorf("error\n%v\ndoes not contain\n%s", err, tt.err)
				}
				if n := len(strings.Split(err.Error(), "\n")); n != 1 {
					t.Errorf("one bad value gave %d errors:\n%v", n, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := Default()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Parse =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestParseWrapsListError(t *testing.T) {
	_, err := Parse(env(map[string]string{"RTMP_PLAY_WHITELIST": "nope"}))
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, access.ErrBadEntry) {
		t.Errorf("error %v should wrap ErrInvalid and access.ErrBadEntry", err)
	}
}

func TestParseJoinsAllErrors(t *testing.T) {
	_, err := Parse(env(map[string]string{
		"RTMP_PORT":                     "abc",
		"MAX_IP_CONCURRENT_CONNECTIONS": "-1",
		"LOG_DEBUG":                     "maybe",
		"CALLBACK_URL":                  "https://example.com/",
		"SSL_KEY":                       "/key.pem",
	}))
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	want := []string{
		`RTMP_PORT: "abc" is not a port number (want 1..65535)`,
		`LOG_DEBUG: "maybe" is not valid (want YES or NO)`,
		`MAX_IP_CONCURRENT_CONNECTIONS: "-1" is not valid (want a whole number >= 0, 0 = unlimited)`,
		`SSL_CERT and SSL_KEY: set both to enable RTMPS, or neither (SSL_KEY is set, SSL_CERT is not)`,
		`JWT_SECRET: required when CALLBACK_URL is set`,
	}
	lines := strings.Split(err.Error(), "\n")
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", err, strings.Join(want, "\n"))
	}
	if !errors.Is(err, ErrInvalid) {
		t.Error("joined error does not wrap ErrInvalid")
	}
}

// TestParseReadsEveryVariable checks that the variable table and Parse
// agree: Parse asks for exactly the variables that Variables lists.
func TestParseReadsEveryVariable(t *testing.T) {
	asked := map[string]bool{}
	if _, err := Parse(func(name string) (string, bool) {
		asked[name] = true
		return "", false
	}); err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, v := range Variables() {
		if listed[v.Name] {
			t.Errorf("%s listed twice", v.Name)
		}
		listed[v.Name] = true
		if v.Description == "" {
			t.Errorf("%s has no description", v.Name)
		}
	}
	if !reflect.DeepEqual(asked, listed) {
		t.Errorf("Parse reads %v\nVariables lists %v", asked, listed)
	}
}

// TestDefaultsAsValues checks that setting every variable to its listed
// default gives Default().
func TestDefaultsAsValues(t *testing.T) {
	m := map[string]string{}
	for _, v := range Variables() {
		m[v.Name] = v.Default
	}
	got, err := Parse(env(m))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, Default()) {
		t.Errorf("listed defaults give\n%+v\nwant\n%+v", got, Default())
	}
}

// TestOriginalVariables checks that every variable the original server
// documented is still read.
func TestOriginalVariables(t *testing.T) {
	original := []string{
		"REDIS_USE", "REDIS_PORT", "REDIS_HOST", "REDIS_PASSWORD", "REDIS_CHANNEL", "REDIS_TLS",
		"SSL_PORT", "SSL_CERT", "SSL_KEY", "SSL_CHECK_RELOAD_SECONDS",
		"RTMP_HOST", "RTMP_PORT", "BIND_ADDRESS", "RTMP_CHUNK_SIZE", "LOG_REQUESTS", "LOG_DEBUG",
		"ID_MAX_LENGTH", "MAX_IP_CONCURRENT_CONNECTIONS", "CONCURRENT_LIMIT_WHITELIST",
		"CUSTOM_JWT_SUBJECT", "GOP_CACHE_SIZE_MB",
		"CALLBACK_URL", "JWT_SECRET", "RTMP_PLAY_WHITELIST", "PLAY_ALLOWED_FROM",
	}
	for _, name := range original {
		if _, ok := lookupVariable(name); !ok {
			t.Errorf("%s is not in Variables()", name)
		}
	}
	for _, name := range []string{"JWT_SECRET", "REDIS_PASSWORD"} {
		if v, _ := lookupVariable(name); !v.Secret {
			t.Errorf("%s is not marked secret", name)
		}
	}
}

func TestVariablesIsACopy(t *testing.T) {
	v := Variables()
	v[0].Default = "changed"
	if Variables()[0].Default == "changed" {
		t.Error("Variables returns the package's own slice")
	}
}

func TestAddresses(t *testing.T) {
	c, err := Parse(env(map[string]string{
		"BIND_ADDRESS": "[::1]", "RTMP_PORT": "1936", "SSL_PORT": "8443",
		"SSL_CERT": "c.pem", "SSL_KEY": "k.pem", "REDIS_HOST": "fd00::6", "REDIS_PORT": "6380",
		"GOP_CACHE_SIZE_MB": "3",
	}))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, got, want string }{
		{"RTMPAddr", c.RTMPAddr(), "[::1]:1936"},
		{"SSLAddr", c.SSLAddr(), "[::1]:8443"},
		{"Redis.Addr", c.Redis.Addr(), "[fd00::6]:6380"},
	} {
		if tt.got != tt.want {
			t.Errorf("%s() = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	if !c.TLSEnabled() {
		t.Error("TLSEnabled() = false with a certificate")
	}
	if got := c.GOPCacheBytes(); got != 3*1024*1024 {
		t.Errorf("GOPCacheBytes() = %d", got)
	}
	c.GOPCacheSizeMB = 65536
	if got := c.GOPCacheBytes(); got != 65536<<20 {
		t.Errorf("GOPCacheBytes() = %d for 65536 MiB", got)
	}
}

func ExampleParse() {
	_, err := Parse(env(map[string]string{
		"RTMP_PORT":                     "abc",
		"MAX_IP_CONCURRENT_CONNECTIONS": "-1",
	}))
	fmt.Println(err)
	// Output:
	// RTMP_PORT: "abc" is not a port number (want 1..65535)
	// MAX_IP_CONCURRENT_CONNECTIONS: "-1" is not valid (want a whole number >= 0, 0 = unlimited)
}
