package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/access"
)

// Parse reads every variable through lookup, which works like
// os.LookupEnv, and checks every value. The error joins one error per
// problem (errors.Join); each wraps ErrInvalid and names the variable.
func Parse(lookup func(string) (string, bool)) (Config, error) {
	c, errs := parse(lookup)
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return c, nil
}

// parse is Parse with the problems as a list of *varError.
func parse(lookup func(string) (string, bool)) (Config, []error) {
	p := &parser{lookup: lookup}
	c := Config{
		RTMPHost:    p.text("RTMP_HOST"),
		RTMPPort:    p.port("RTMP_PORT"),
		BindAddress: p.host("BIND_ADDRESS"),

		SSLPort:        p.port("SSL_PORT"),
		SSLCert:        p.text("SSL_CERT"),
		SSLKey:         p.text("SSL_KEY"),
		SSLCheckReload: time.Duration(p.number("SSL_CHECK_RELOAD_SECONDS", 0, maxReloadSeconds, "a whole number of seconds 0..31536000, 0 = never check")) * time.Second,

		ChunkSize: p.number("RTMP_CHUNK_SIZE", 128, 65536, "a whole number 128..65536"),

		LogRequests: p.boolean("LOG_REQUESTS"),
		LogDebug:    p.boolean("LOG_DEBUG"),

		IDMaxLength:              p.number("ID_MAX_LENGTH", 1, 4096, "a whole number 1..4096"),
		MaxIPConnections:         p.number("MAX_IP_CONCURRENT_CONNECTIONS", 0, math.MaxInt, "a whole number >= 0, 0 = unlimited"),
		MaxConnections:           p.number("MAX_CONNECTIONS", 1, 1000000, "a whole number 1..1000000"),
		ConcurrentLimitWhitelist: p.list("CONCURRENT_LIMIT_WHITELIST"),
		IPv6LimitPrefix:          p.number("CONCURRENT_LIMIT_IPV6_PREFIX", 1, 128, "a prefix length 1..128"),
		PlayWhitelist:            p.playWhitelist(),

		CallbackURL:     p.callbackURL("CALLBACK_URL"),
		JWTSecret:       p.secret("JWT_SECRET"),
		JWTSubject:      p.text("CUSTOM_JWT_SUBJECT"),
		CallbackTimeout: p.seconds("CALLBACK_TIMEOUT_SECONDS", 1, 300),

		GOPCacheSizeMB:  p.number("GOP_CACHE_SIZE_MB", 0, 65536, "a whole number of MiB 0..65536, 0 = no cache"),
		GOPCacheTotalMB: p.number("GOP_CACHE_TOTAL_MB", 0, 1048576, "a whole number of MiB 0..1048576, 0 = no limit"),

		Redis: Redis{
			Use:      p.boolean("REDIS_USE"),
			Host:     p.host("REDIS_HOST"),
			Port:     p.port("REDIS_PORT"),
			Password: p.secret("REDIS_PASSWORD"),
			Channel:  p.text("REDIS_CHANNEL"),
			TLS:      p.boolean("REDIS_TLS"),
		},

		AdminAddress: p.adminAddress("ADMIN_ADDRESS"),
		AdminToken:   p.secret("ADMIN_TOKEN"),

		ForwardURLs:        p.forwardURLs("FORWARD_URLS"),
		ForwardTLSInsecure: p.boolean("FORWARD_TLS_INSECURE"),
	}

	if (c.SSLCert == "") != (c.SSLKey == "") {
		set, unset := "SSL_CERT", "SSL_KEY"
		if c.SSLCert == "" {
			set, unset = unset, set
		}
		p.fail("SSL_CERT and SSL_KEY", fmt.Sprintf("set both to enable RTMPS, or neither (%s is set, %s is not)", set, unset))
	}
	if c.CallbackURL != "" && c.JWTSecret == "" {
		p.fail("JWT_SECRET", "required when CALLBACK_URL is set")
	}
	p.parseFleet(&c)
	return c, p.errs
}

// maxReloadSeconds is one year: longer periods are surely mistakes, and the
// bound keeps the time.Duration from overflowing.
const maxReloadSeconds = 365 * 24 * 60 * 60

// varError is a problem with one variable, or with a pair of them.
type varError struct {
	name  string // the variable, or "A and B"
	msg   string
	cause error // optional
}

func (e *varError) Error() string { return e.name + ": " + e.msg }

func (e *varError) Unwrap() []error {
	if e.cause != nil {
		return []error{ErrInvalid, e.cause}
	}
	return []error{ErrInvalid}
}

// parser reads variables one by one and collects the problems it finds.
// A method that finds a problem returns the zero value: Parse then returns
// no Config.
type parser struct {
	lookup func(string) (string, bool)
	errs   []error
}

func (p *parser) fail(name, msg string) {
	p.errs = append(p.errs, &varError{name: name, msg: msg})
}

func (p *parser) invalid(name, value, want string) {
	p.fail(name, fmt.Sprintf("%q is not valid (want %s)", value, want))
}

// given returns the trimmed value of the variable, and whether it was set
// to something other than spaces.
func (p *parser) given(name string) (string, bool) {
	v, _ := p.lookup(name)
	v = strings.TrimSpace(v)
	return v, v != ""
}

// value returns the trimmed value of the variable, or its default.
func (p *parser) value(name string) string {
	if v, ok := p.given(name); ok {
		return v
	}
	def, ok := lookupVariable(name)
	if !ok {
		panic("config: variable " + name + " is missing from the table")
	}
	return def.Default
}

func (p *parser) text(name string) string { return p.value(name) }

// secret returns the value as given, untrimmed, since spaces may be part of
// a password; a value of only spaces counts as unset.
func (p *parser) secret(name string) Secret {
	if _, ok := p.given(name); !ok {
		return ""
	}
	v, _ := p.lookup(name)
	return Secret(v)
}

func (p *parser) number(name string, min, max int, want string) int {
	v := p.value(name)
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		p.invalid(name, v, want)
		return 0
	}
	return n
}

func (p *parser) port(name string) int {
	v := p.value(name)
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		p.fail(name, fmt.Sprintf("%q is not a port number (want 1..65535)", v))
		return 0
	}
	return n
}

// decimalSeconds is a number of seconds, with an optional fraction.
var decimalSeconds = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

// seconds parses a decimal number of seconds between min and max.
func (p *parser) seconds(name string, min, max float64) time.Duration {
	v := p.value(name)
	f, err := strconv.ParseFloat(v, 64)
	if !decimalSeconds.MatchString(v) || err != nil || f < min || f > max {
		p.invalid(name, v, fmt.Sprintf("seconds %g..%g, decimals allowed", min, max))
		return 0
	}
	return time.Duration(math.Round(f * float64(time.Second)))
}

func (p *parser) boolean(name string) bool {
	v := p.value(name)
	switch strings.ToLower(v) {
	case "yes", "true", "1", "on":
		return true
	case "no", "false", "0", "off":
		return false
	}
	p.invalid(name, v, "YES or NO")
	return false
}

func (p *parser) list(name string) access.List {
	l, err := access.ParseList(p.value(name))
	if err != nil {
		p.errs = append(p.errs, &varError{name: name, msg: err.Error(), cause: err})
	}
	return l
}

// playWhitelist reads RTMP_PLAY_WHITELIST and its older name
// PLAY_ALLOWED_FROM, which may both be set only to the same list.
func (p *parser) playWhitelist() access.List {
	const name, alias = "RTMP_PLAY_WHITELIST", "PLAY_ALLOWED_FROM"
	_, aliasGiven := p.given(alias)
	_, nameGiven := p.given(name)
	if !aliasGiven {
		return p.list(name)
	}
	old := p.list(alias)
	if !nameGiven {
		return old
	}
	l := p.list(name)
	if !l.Equal(old) {
		p.fail(name+" and "+alias, fmt.Sprintf("both set, to different lists (%q and %q); set only %s", l, old, name))
	}
	return l
}

// host parses an IP address, an IPv6 address in brackets or a host name,
// and returns it without brackets; "" is allowed.
func (p *parser) host(name string) string {
	v := p.value(name)
	if v == "" {
		return ""
	}
	if h, ok := strings.CutPrefix(v, "["); ok {
		if h, ok := strings.CutSuffix(h, "]"); ok {
			if a, err := netip.ParseAddr(h); err == nil && a.Is6() {
				return h
			}
		}
	} else if _, err := netip.ParseAddr(v); err == nil || isHostname(v) {
		return v
	}
	p.invalid(name, v, "an IP address or a host name, without a port")
	return ""
}

// isHostname reports whether s is a DNS name: dot-separated labels of
// letters, digits, '-' and '_' (which container networks use), at most 63
// bytes each and 253 in all, with an optional final dot. The last label
// must not be all digits, so a mistyped IPv4 address is not taken for a
// name.
func isHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	for _, label := range labels {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	last := labels[len(labels)-1]
	return strings.Trim(last, "0123456789") != ""
}

// callbackURL parses an absolute http or https URL with a host; "" is
// allowed.
func (p *parser) callbackURL(name string) string {
	v := p.value(name)
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil {
		p.invalid(name, v, "an absolute http:// or https:// URL")
		return ""
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		p.invalid(name, redactURL(v), "an absolute http:// or https:// URL with a host")
		return ""
	}
	return v
}

// adminAddress parses host:port for the monitoring listener. Unset means
// the default; set to empty or OFF means no listener.
func (p *parser) adminAddress(name string) string {
	raw, set := p.lookup(name)
	v := strings.TrimSpace(raw)
	if set && v == "" || strings.EqualFold(v, "off") {
		return ""
	}
	v = p.value(name)
	const want = "host:port, such as 127.0.0.1:9935 or [::1]:9935, or empty or OFF to turn it off"
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		p.invalid(name, v, want)
		return ""
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.invalid(name, v, "a port 0..65535 (0 picks a free one) in "+want)
		return ""
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil && !isHostname(host) {
			p.invalid(name, v, "an IP address or host name in "+want)
			return ""
		}
	}
	return v
}
