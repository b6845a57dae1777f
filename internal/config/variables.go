package config

import "slices"

// Variable describes one environment variable that the server reads.
type Variable struct {
	Name        string
	Default     string // as written in an env file; "" for none
	Description string
	Secret      bool // the value is never shown
}

// variables lists every variable, grouped as in
// etc/rtmp-server.env.example. Parse takes its defaults from here.
var variables = []Variable{
	// Listeners.
	{Name: "RTMP_PORT", Default: "1935", Description: "RTMP listening port (1..65535), also sent to the callback as rtmp_port."},
	{Name: "BIND_ADDRESS", Default: "", Description: "IP address or host name that RTMP and RTMPS listen on; empty means every interface."},
	{Name: "RTMP_HOST", Default: "", Description: "Host name sent to the callback as rtmp_host, to tell it which server the event comes from."},
	{Name: "RTMP_CHUNK_SIZE", Default: "128", Description: "Outgoing RTMP chunk size in bytes (128..65536)."},

	// TLS.
	{Name: "SSL_PORT", Default: "443", Description: "RTMPS (RTMP over TLS) listening port (1..65535)."},
	{Name: "SSL_CERT", Default: "", Description: "Path of the PEM certificate chain; RTMPS is enabled when SSL_CERT and SSL_KEY are both set."},
	{Name: "SSL_KEY", Default: "", Description: "Path of the PEM private key; set together with SSL_CERT."},
	{Name: "SSL_CHECK_RELOAD_SECONDS", Default: "60", Description: "How often, in seconds, to check the certificate files for changes (renewals); 0 never checks."},

	// Access.
	{Name: "RTMP_PLAY_WHITELIST", Default: "*", Description: "Comma-separated IP addresses and CIDR prefixes allowed to play; * allows everyone."},
	{Name: "PLAY_ALLOWED_FROM", Default: "", Description: "Older name of RTMP_PLAY_WHITELIST; if both are set they must be equal."},
	{Name: "MAX_IP_CONCURRENT_CONNECTIONS", Default: "4", Description: "Maximum number of concurrent connections from one IP address; 0 means unlimited."},
	{Name: "MAX_CONNECTIONS", Default: "20000", Description: "Maximum number of concurrent connections to the server (1..1000000); more are closed at once."},
	{Name: "CONCURRENT_LIMIT_WHITELIST", Default: "", Description: "Comma-separated IP addresses and CIDR prefixes exempt from MAX_IP_CONCURRENT_CONNECTIONS; * exempts everyone."},
	{Name: "CONCURRENT_LIMIT_IPV6_PREFIX", Default: "64", Description: "Prefix length (1..128) by which MAX_IP_CONCURRENT_CONNECTIONS counts IPv6 clients: all addresses of one prefix share the limit; 128 counts single addresses."},

	// Callbacks.
	{Name: "CALLBACK_URL", Default: "", Description: "http(s) URL that start and stop events are posted to; empty accepts every publish."},
	{Name: "JWT_SECRET", Default: "", Description: "Secret that signs the event tokens (HMAC-SHA256); required when CALLBACK_URL is set.", Secret: true},
	{Name: "CUSTOM_JWT_SUBJECT", Default: "rtmp_event", Description: "Subject (sub) of the event tokens."},
	{Name: "CALLBACK_TIMEOUT_SECONDS", Default: "10", Description: "Time limit of one callback request, in seconds (1..300, decimals allowed)."},

	// Redis.
	{Name: "REDIS_USE", Default: "NO", Description: "YES to receive commands (kill-session, close-stream) over Redis Pub/Sub."},
	{Name: "REDIS_HOST", Default: "127.0.0.1", Description: "Redis host name or IP address."},
	{Name: "REDIS_PORT", Default: "6379", Description: "Redis port (1..65535)."},
	{Name: "REDIS_PASSWORD", Default: "", Description: "Redis password, if Redis requires one.", Secret: true},
	{Name: "REDIS_CHANNEL", Default: "rtmp_commands", Description: "Redis channel to listen on for commands."},
	{Name: "REDIS_TLS", Default: "NO", Description: "YES to connect to Redis over TLS."},

	// Monitoring.
	{Name: "ADMIN_ADDRESS", Default: "127.0.0.1:9935", Description: "host:port of the monitoring HTTP listener (metrics, streams API, status page); set to empty or OFF to turn it off; changing it needs a restart."},
	{Name: "ADMIN_TOKEN", Default: "", Description: "When set, every monitoring endpoint, the status page included, requires Authorization: Bearer ADMIN_TOKEN (or, from a browser, HTTP Basic with the token as password); changing it needs a restart.", Secret: true},

	// Forwarding.
	{Name: "FORWARD_URLS", Default: "", Description: "Comma-separated rtmp:// or rtmps:// URL templates that every publish is forwarded to; {channel}, {key} and {stream_id} are replaced by the publish's."},
	{Name: "FORWARD_TLS_INSECURE", Default: "NO", Description: "YES to skip certificate verification of rtmps:// forward targets (lab use only; logged as a warning)."},

	// Logging.
	{Name: "LOG_REQUESTS", Default: "YES", Description: "YES to log each connection and each publish and play request."},
	{Name: "LOG_DEBUG", Default: "NO", Description: "YES to log debug messages."},

	// Limits.
	{Name: "ID_MAX_LENGTH", Default: "128", Description: "Maximum length of a channel name and of a stream key (1..4096)."},
	{Name: "GOP_CACHE_SIZE_MB", Default: "256", Description: "Size limit in MiB of the cache that lets players start at the last keyframe (0..65536); 0 disables it."},
	{Name: "GOP_CACHE_TOTAL_MB", Default: "2048", Description: "Limit in MiB of all streams' GOP caches together (0..1048576); a stream that would pass it keeps nothing until its next keyframe; 0 means no limit."},

	// Fleet.
	{Name: "FLEET", Default: "NO", Description: "YES to share one Redis with the other boxes of a fleet: one publisher per channel across them, and a registry of boxes and streams; requires REDIS_USE=YES and RTMP_HOST, different on every box."},
	{Name: "FLEET_CLAIM_TTL_SECONDS", Default: "10", Description: "Life in seconds (1..3600) of a stream's claim and of the box's registry entry without a refresh: how soon the channels of a box that died are free."},
	{Name: "FLEET_KEY_PREFIX", Default: "rtmp:", Description: "Prefix of the fleet's Redis keys (up to 64 printable characters, no spaces)."},
	{Name: "FLEET_REDIS_DOWN", Default: "accept", Description: "What a fleet box does with publishes while Redis is unreachable: accept (unclaimed, claimed when Redis returns) or refuse."},
	{Name: "DRAIN", Default: "NO", Description: "YES to refuse new publishes (\"server draining\") while the streams already live go on; applies on reload."},
}

// Variables returns every variable the server reads, with its default and
// a one-line description, in the order of etc/rtmp-server.env.example.
func Variables() []Variable { return slices.Clone(variables) }

// lookupVariable returns the description of the named variable.
func lookupVariable(name string) (Variable, bool) {
	i := slices.IndexFunc(variables, func(v Variable) bool { return v.Name == name })
	if i < 0 {
		return Variable{}, false
	}
	return variables[i], true
}
