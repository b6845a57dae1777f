// Package control receives stream control commands over Redis pub/sub and
// applies them to the server.
//
// Each pub/sub message is one command, written "COMMAND>ARG_1|ARG_2|...":
//
//	kill-session>CHANNEL            close the publisher of CHANNEL
//	close-stream>CHANNEL|STREAM_ID  close it only if its stream id is STREAM_ID
//	drain>HOST                      the server named HOST (RTMP_HOST) drains
//	undrain>HOST                    it takes new publishes again
//
// Commands are broadcast: every server subscribed to the channel receives
// each one, and acts on it only if it holds the stream, or a publish of
// that channel still waiting to go live (see Target), or, for drain and
// undrain, if HOST names it.
package control

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/rtmp-server/rtmp-server/internal/logging"
)

// Command names.
const (
	KillSession = "kill-session"
	CloseStream = "close-stream"
	Drain       = "drain"
	Undrain     = "undrain"
)

// MaxMessageSize is the longest message ParseCommand accepts, in bytes,
// counting surrounding whitespace.
const MaxMessageSize = 4096

var (
	ErrMalformed      = errors.New("control: malformed command")
	ErrUnknownCommand = errors.New("control: unknown command")
)

// Command is a parsed control message. StreamID is set only for
// CloseStream; Host, instead of Channel, only for Drain and Undrain.
type Command struct {
	Name     string
	Channel  string
	StreamID string
	Host     string
}

// String formats c as the message that ParseCommand reads back into c.
func (c Command) String() string {
	switch c.Name {
	case CloseStream:
		return c.Name + ">" + c.Channel + "|" + c.StreamID
	case Drain, Undrain:
		return c.Name + ">" + c.Host
	}
	return c.Name + ">" + c.Channel
}

// ParseCommand parses one message. Surrounding whitespace is ignored. The
// channel must be letters, digits, '-' and '_'; a stream id must be non-empty
// and free of control characters. Errors wrap ErrMalformed or
// ErrUnknownCommand, say what was wrong, and quote the message as
// logging.Quote does (at most logging.MaxQuoted bytes, control characters
// and invalid UTF-8 replaced).
func ParseCommand(msg string) (Command, error) {
	if len(msg) > MaxMessageSize {
		return Command{}, fmt.Errorf("%w: %d bytes, longer than %d: %s",
			ErrMalformed, len(msg), MaxMessageSize, logging.Quote(msg))
	}
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return Command{}, fmt.Errorf("%w: empty message", ErrMalformed)
	}
	name, rest, found := strings.Cut(msg, ">")
	if !found {
		return Command{}, fmt.Errorf("%w: no '>' after the command name: %s", ErrMalformed, logging.Quote(msg))
	}

	var want int
	switch name {
	case KillSession, Drain, Undrain:
		want = 1
	case CloseStream:
		want = 2
	default:
		return Command{}, fmt.Errorf("%w: %s", ErrUnknownCommand, logging.Quote(name))
	}
	args := strings.SplitN(rest, "|", want+1)
	if len(args) != want {
		return Command{}, fmt.Errorf("%w: %s takes %d argument(s), got %s: %s",
			ErrMalformed, name, want, countArgs(rest), logging.Quote(msg))
	}

	if name == Drain || name == Undrain {
		if err := checkHost(args[0]); err != nil {
			return Command{}, fmt.Errorf("%w: %s: %v: %s", ErrMalformed, name, err, logging.Quote(msg))
		}
		return Command{Name: name, Host: args[0]}, nil
	}
	cmd := Command{Name: name, Channel: args[0]}
	if err := checkChannel(cmd.Channel); err != nil {
		return Command{}, fmt.Errorf("%w: %s: %v: %s", ErrMalformed, name, err, logging.Quote(msg))
	}
	if name == CloseStream {
		cmd.StreamID = args[1]
		if err := checkStreamID(cmd.StreamID); err != nil {
			return Command{}, fmt.Errorf("%w: %s: %v: %s", ErrMalformed, name, err, logging.Quote(msg))
		}
	}
	return cmd, nil
}

// countArgs describes how many '|'-separated arguments s holds.
func countArgs(s string) string {
	return strconv.Itoa(strings.Count(s, "|") + 1)
}

func checkChannel(ch string) error {
	if ch == "" {
		return errors.New("empty channel")
	}
	for i := 0; i < len(ch); i++ {
		c := ch[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return errors.New("channel may hold only letters, digits, '-' and '_'")
		}
	}
	return nil
}

// maxHost bounds the HOST of drain and undrain (a DNS name's length).
const maxHost = 253

// checkHost checks the HOST of drain and undrain: what RTMP_HOST may be in
// a fleet.
func checkHost(h string) error {
	if h == "" {
		return errors.New("empty host")
	}
	if len(h) > maxHost {
		return fmt.Errorf("host longer than %d bytes", maxHost)
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return errors.New("host may hold only letters, digits, '.', ':', '-' and '_'")
		}
	}
	return nil
}

func checkStreamID(id string) error {
	if id == "" {
		return errors.New("empty stream id")
	}
	if !utf8.ValidString(id) {
		return errors.New("stream id is not valid UTF-8")
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return errors.New("stream id holds a control character")
		}
	}
	return nil
}
