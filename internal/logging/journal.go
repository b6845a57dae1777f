package logging

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/coreos/go-systemd/v22/journal"
)

// SyslogIdentifier is the SYSLOG_IDENTIFIER of every journal entry, the name
// `journalctl -t` selects.
const SyslogIdentifier = "rtmp-server"

// wellKnownFields maps the attribute keys the server logs everywhere to the
// journal fields they are filed under, so `journalctl SESSION_ID=…` finds a
// session. They apply to attributes outside any group.
var wellKnownFields = map[string]string{
	"session":   "SESSION_ID",
	"channel":   "CHANNEL",
	"client_ip": "CLIENT_IP",
	"stream_id": "STREAM_ID",
	"event":     "EVENT",
}

// reservedFields are set by the handler or by journal.Send itself; an
// attribute that would map onto one is filed with attrFieldPrefix instead.
var reservedFields = []string{"MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER"}

const (
	// attrFieldPrefix starts field names that would otherwise be reserved,
	// empty or start with a digit.
	attrFieldPrefix = "ATTR_"
	// maxFieldName is journald's limit on the length of a field name.
	maxFieldName = 64
)

// journalHandler is a slog.Handler that sends native journal entries.
type journalHandler struct {
	level slog.Leveler
	send  func(msg string, pri journal.Priority, fields map[string]string) error

	// The attributes and groups added by WithAttrs and WithGroup; immutable
	// once the handler is built.
	text   string   // " key=value" for each attribute, appended to MESSAGE
	fields []field  // the journal fields of those attributes
	groups []string // groups opened so far, outermost first
}

type field struct{ name, value string }

// NewJournalHandler returns a slog.Handler that passes each record at or above
// level to send, which is journal.Send outside tests. The entry's MESSAGE is
// the record's message followed by its attributes as key=value (so plain
// journalctl shows them; the journal keeps its own timestamp), PRIORITY
// follows the level (debug 7, info 6, warn 4, error 3) and SYSLOG_IDENTIFIER is
// rtmp-server. Each attribute is also a field of its own: session, channel,
// client_ip, stream_id and event become SESSION_ID, CHANNEL, CLIENT_IP,
// STREAM_ID and EVENT; any other key is upper-cased with characters outside
// A-Z, 0-9 and _ replaced by _, and prefixed by its groups (group "peer", key
// "addr" is PEER_ADDR). A nil level means slog.LevelInfo.
//
// send must be safe for concurrent use; the handler's Handle returns its
// error.
func NewJournalHandler(level slog.Leveler, send func(msg string, pri journal.Priority, fields map[string]string) error) slog.Handler {
	if level == nil {
		level = slog.LevelInfo
	}
	return &journalHandler{level: level, send: send}
}

func (h *journalHandler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= h.level.Level()
}

func (h *journalHandler) Handle(_ context.Context, r slog.Record) error {
	e := entry{fields: make(map[string]string, len(h.fields)+r.NumAttrs()+1)}
	e.text.WriteString(r.Message)
	e.text.WriteString(h.text)
	for _, f := range h.fields {
		e.fields[f.name] = f.value
	}
	r.Attrs(func(a slog.Attr) bool {
		e.addAttr(h.groups, a)
		return true
	})
	e.fields["SYSLOG_IDENTIFIER"] = SyslogIdentifier
	return h.send(e.text.String(), priority(r.Level), e.fields)
}

func (h *journalHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	e := entry{fields: make(map[string]string)}
	e.text.WriteString(h.text)
	for _, a := range attrs {
		e.addAttr(h.groups, a)
	}
	h2 := *h
	h2.text = e.text.String()
	h2.fields = slices.Clone(h.fields)
	for _, f := range e.order {
		h2.fields = append(h2.fields, field{f, e.fields[f]})
	}
	return &h2
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.groups = append(slices.Clip(h.groups), name)
	return &h2
}

// priority maps a slog level to a syslog priority; levels between the named
// ones take the priority of the named level below them.
func priority(level slog.Level) journal.Priority {
	switch {
	case level >= slog.LevelError:
		return journal.PriErr
	case level >= slog.LevelWarn:
		return journal.PriWarning
	case level >= slog.LevelInfo:
		return journal.PriInfo
	default:
		return journal.PriDebug
	}
}

// entry accumulates the MESSAGE text and the fields of one record, or of the
// attributes given to WithAttrs.
type entry struct {
	text   strings.Builder
	fields map[string]string
	order  []string // field names in the order first added
}

// addAttr adds a, inside groups, to the text and the fields, following the
// slog.Handler rules: attributes are resolved, empty ones are dropped, a
// group with no attributes is dropped and one with an empty key is inlined.
func (e *entry) addAttr(groups []string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		attrs := a.Value.Group()
		if len(attrs) == 0 {
			return
		}
		if a.Key != "" {
			groups = append(slices.Clip(groups), a.Key)
		}
		for _, ga := range attrs {
			e.addAttr(groups, ga)
		}
		return
	}
	value := valueText(a.Value)

	e.text.WriteByte(' ')
	key := a.Key
	if len(groups) > 0 {
		key = strings.Join(groups, ".") + "." + a.Key
	}
	e.text.WriteString(quoteIfNeeded(key))
	e.text.WriteByte('=')
	e.text.WriteString(quoteIfNeeded(value))

	name := fieldName(groups, a.Key)
	if _, seen := e.fields[name]; !seen {
		e.order = append(e.order, name)
	}
	e.fields[name] = value
}

// fieldName returns the journal field for key inside groups.
func fieldName(groups []string, key string) string {
	if len(groups) == 0 {
		if name, ok := wellKnownFields[key]; ok {
			return name
		}
	}
	var b strings.Builder
	for _, part := range append(slices.Clip(groups), key) {
		if b.Len() > 0 {
			b.WriteByte('_')
		}
		for _, r := range part {
			switch {
			case r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
				b.WriteRune(r)
			case r >= 'a' && r <= 'z':
				b.WriteRune(r - 'a' + 'A')
			default:
				b.WriteByte('_')
			}
		}
	}
	name := strings.TrimLeft(b.String(), "_")
	switch {
	case name == "":
		name = strings.TrimSuffix(attrFieldPrefix, "_")
	case name[0] >= '0' && name[0] <= '9', slices.Contains(reservedFields, name):
		name = attrFieldPrefix + name
	}
	if len(name) > maxFieldName {
		name = name[:maxFieldName]
	}
	return name
}

// valueText renders a resolved, non-group value.
func valueText(v slog.Value) string {
	if v.Kind() == slog.KindTime {
		return v.Time().Format(time.RFC3339Nano)
	}
	return v.String()
}

// quoteIfNeeded quotes s the way slog.TextHandler does: when it is empty or
// holds a space, '=', '"' or a character that does not print.
func quoteIfNeeded(s string) string {
	if s == "" {
		return `""`
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == ' ' || r == '=' || r == '"' || !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
		i += size
	}
	return s
}
