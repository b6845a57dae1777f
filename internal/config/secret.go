package config

import (
	"fmt"
	"log/slog"
)

// Secret is a value that must never be printed or logged, such as a
// password. Every way of formatting it — fmt verbs, slog, encoding/json and
// other text encoders — gives "[redacted]", or "" when it is empty, so that
// a log shows whether it is set. Reveal returns the value itself.
type Secret string

const redacted = "[redacted]"

// Reveal returns the secret's value, for the one place that uses it.
func (s Secret) Reveal() string { return string(s) }

// String returns "[redacted]", or "" for an empty secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString is String, so that %#v does not show the value either.
func (s Secret) GoString() string { return s.String() }

// Format writes String for every verb, so that no verb (%x, %d, ...)
// prints the value.
func (s Secret) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(s.String())) }

// LogValue makes slog show String.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText makes encoding/json and other text encoders write String.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
