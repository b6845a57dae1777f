package forward

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/rtmp-server/rtmp-server/internal/client"
	"github.com/rtmp-server/rtmp-server/internal/logging"
)

// The placeholders of a URL template.
const (
	PlaceholderChannel  = "{channel}"
	PlaceholderKey      = "{key}"
	PlaceholderStreamID = "{stream_id}"
)

// MaxTemplates bounds the templates of FORWARD_URLS, and MaxExtraTargets the
// targets a start callback may add to one publish; more are refused
// (FORWARD_URLS) or skipped (a callback's).
const (
	MaxTemplates    = 32
	MaxExtraTargets = 16
	// MaxURLLength bounds one URL or template.
	MaxURLLength = 2048
)

// ErrBadTemplate is wrapped by the errors of ParseTemplate and ParseList.
var ErrBadTemplate = errors.New("forward: invalid URL template")

// Template is one target URL with {channel}, {key} and {stream_id}
// placeholders, checked to make an rtmp:// or rtmps:// URL with a host, an
// application and a stream name whatever they are replaced with.
type Template struct {
	raw string
}

// ParseTemplate checks s.
func ParseTemplate(s string) (Template, error) {
	if len(s) > MaxURLLength {
		return Template{}, fmt.Errorf("%w: %d bytes (at most %d)", ErrBadTemplate, len(s), MaxURLLength)
	}
	rest := s
	for {
		i := strings.IndexAny(rest, "{}")
		if i < 0 {
			break
		}
		if rest[i] == '}' {
			return Template{}, fmt.Errorf("%w: %s: } without {", ErrBadTemplate, maskTemplate(s))
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return Template{}, fmt.Errorf("%w: %s: { without }", ErrBadTemplate, maskTemplate(s))
		}
		switch p := rest[i : i+j+1]; p {
		case PlaceholderChannel, PlaceholderKey, PlaceholderStreamID:
		default:
			return Template{}, fmt.Errorf("%w: %s: unknown placeholder %s (want %s, %s or %s)", ErrBadTemplate, maskTemplate(s),
				logging.Quote(p), PlaceholderChannel, PlaceholderKey, PlaceholderStreamID)
		}
		rest = rest[i+j+1:]
	}
	t := Template{raw: s}
	if _, err := client.ParseURL(t.Expand("channel", "key", "id")); err != nil {
		return Template{}, fmt.Errorf("%w: %s: %w", ErrBadTemplate, maskTemplate(s), err)
	}
	return t, nil
}

// ParseList parses a comma-separated list of templates (FORWARD_URLS);
// spaces around each are ignored and an empty list has no templates.
func ParseList(list string) ([]Template, error) {
	var out []Template
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if len(out) == MaxTemplates {
			return nil, fmt.Errorf("%w: more than %d URLs", ErrBadTemplate, MaxTemplates)
		}
		t, err := ParseTemplate(item)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// Expand returns the URL for a publish; the values are escaped as path
// segments.
func (t Template) Expand(channel, key, streamID string) string {
	return strings.NewReplacer(
		PlaceholderChannel, url.PathEscape(channel),
		PlaceholderKey, url.PathEscape(key),
		PlaceholderStreamID, url.PathEscape(streamID),
	).Replace(t.raw)
}

// String returns the template with its stream name masked (a literal
// platform key is a secret).
func (t Template) String() string { return maskTemplate(t.raw) }

// maskTemplate masks the stream name of a template or URL: what follows
// the application (the path's second segment on).
func maskTemplate(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return logging.Clip(s)
	}
	host, path, _ := strings.Cut(rest, "/")
	app, name, _ := strings.Cut(path, "/")
	out := logging.Clip(scheme) + "://" + logging.Clip(host) + "/" + logging.Clip(app)
	if name != "" {
		out += "/" + masked
	}
	return out
}

// masked replaces a stream key in what is logged.
const masked = "***"

// Mask returns u for a log line: the stream name masked, and key masked
// wherever else it appears (a template may put it in the application).
func Mask(u client.URL, key string) string {
	app := u.App
	if key != "" {
		app = strings.ReplaceAll(app, url.PathEscape(key), masked)
	}
	return u.Scheme() + "://" + logging.Clip(u.Host) + "/" + logging.Clip(app) + "/" + masked
}
