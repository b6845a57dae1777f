package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/message"
)

// Default ports of the URL schemes.
const (
	DefaultPort    = "1935"
	DefaultTLSPort = "443"
)

// URL schemes.
const (
	SchemeRTMP  = "rtmp"
	SchemeRTMPS = "rtmps"
)

// ErrBadURL is wrapped by ParseURL's errors.
var ErrBadURL = errors.New("client: invalid RTMP URL")

// ErrPublishRefused is returned by StartPublish when the target answers
// publish with something other than NetStream.Publish.Start at status
// level.
var ErrPublishRefused = errors.New("client: publish refused")

// URL is an rtmp:// or rtmps:// URL split as RTMP uses it: the host to
// dial, the application (the path's first segment) and the stream name
// (the rest of the path, with the query if any: platforms put options there).
type URL struct {
	TLS  bool
	Host string // host:port, the scheme's default port when the URL has none
	App  string
	Name string
}

// ParseURL parses s. The scheme must be rtmp or rtmps; the URL must have a
// host, an application and a stream name, and no user information or
// fragment. Errors wrap ErrBadURL and do not quote the stream name.
func ParseURL(s string) (URL, error) {
	bad := func(format string, args ...any) (URL, error) {
		return URL{}, fmt.Errorf("%w: "+format, append([]any{ErrBadURL}, args...)...)
	}
	u, err := url.Parse(s)
	if err != nil {
		return bad("does not parse")
	}
	var out URL
	port := DefaultPort
	switch strings.ToLower(u.Scheme) {
	case SchemeRTMP:
	case SchemeRTMPS:
		out.TLS, port = true, DefaultTLSPort
	case "":
		return bad("no scheme (want rtmp:// or rtmps://)")
	default:
		return bad("scheme %q (want rtmp or rtmps)", clip(u.Scheme))
	}
	switch {
	case u.Opaque != "":
		return bad("no // after the scheme")
	case u.User != nil:
		return bad("user information is not supported")
	case u.Fragment != "":
		return bad("fragment (#) is not supported")
	case u.Hostname() == "":
		return bad("no host")
	}
	if u.Port() != "" {
		port = u.Port()
	}
	out.Host = net.JoinHostPort(u.Hostname(), port)
	path := strings.TrimPrefix(u.Path, "/")
	app, name, _ := strings.Cut(path, "/")
	if app == "" {
		return bad("no application (want %s://host/app/stream)", strings.ToLower(u.Scheme))
	}
	if name == "" {
		return bad("no stream name (want %s://host/app/stream)", strings.ToLower(u.Scheme))
	}
	if u.RawQuery != "" {
		name += "?" + u.RawQuery
	}
	out.App, out.Name = app, name
	return out, nil
}

func clip(s string) string {
	const max = 16
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

// Scheme returns rtmps for a TLS URL, else rtmp.
func (u URL) Scheme() string {
	if u.TLS {
		return SchemeRTMPS
	}
	return SchemeRTMP
}

// TCURL returns the URL of the application, as connect's tcUrl.
func (u URL) TCURL() string { return u.Scheme() + "://" + u.Host + "/" + u.App }

// TLSConfig returns the TLS settings to dial u with: verification against
// the system's roots for u's host name, or none when insecure is set.
func (u URL) TLSConfig(insecure bool) *tls.Config {
	host, _, _ := net.SplitHostPort(u.Host)
	return &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure} // insecure only when the operator asks (FORWARD_TLS_INSECURE)
}

// DialURL dials u's host (with TLS for rtmps, using tlsConfig, or
// u.TLSConfig(false) when it is nil) and runs the handshake, within
// timeout and ctx.
func DialURL(ctx context.Context, u URL, tlsConfig *tls.Config, timeout time.Duration) (*Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var nc net.Conn
	var err error
	if u.TLS {
		if tlsConfig == nil {
			tlsConfig = u.TLSConfig(false)
		}
		nc, err = (&tls.Dialer{Config: tlsConfig}).DialContext(ctx, "tcp", u.Host)
	} else {
		nc, err = (&net.Dialer{}).DialContext(ctx, "tcp", u.Host)
	}
	if err != nil {
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	return Handshake(nc, time.Until(deadline))
}

// StartPublish publishes u's stream as an encoder does: connect to the
// application, releaseStream and FCPublish (which nginx-rtmp and the
// platforms' ingests expect), createStream, then publish live. It returns
// once the target answered NetStream.Publish.Start; a refusal is an error
// wrapping ErrStatus and the target's Status (connect, createStream), or
// ErrPublishRefused with the status (publish). The caller sets a deadline.
func (c *Conn) StartPublish(u URL) error {
	if err := c.ConnectURL(u.App, u.TCURL()); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	// Their answers (a _result, or nothing) are skipped by the reads below.
	if _, err := c.Call(0, message.CommandReleaseStream, nil, u.Name); err != nil {
		return err
	}
	if _, err := c.Call(0, message.CommandFCPublish, nil, u.Name); err != nil {
		return err
	}
	if _, err := c.CreateStream(); err != nil {
		return fmt.Errorf("createStream: %w", err)
	}
	st, err := c.Publish(u.Name)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if st.Code != message.CodePublishStart {
		return fmt.Errorf("%w: %w", ErrPublishRefused, st)
	}
	return nil
}

// EndPublish ends the publication of name cleanly: FCUnpublish, then
// deleteStream of the stream StartPublish created. It does not wait for
// answers; the caller closes the connection after.
func (c *Conn) EndPublish(name string) error {
	if _, err := c.Call(0, message.CommandFCUnpublish, nil, name); err != nil {
		return err
	}
	_, err := c.Call(0, message.CommandDeleteStream, nil, float64(c.StreamID()))
	return err
}
