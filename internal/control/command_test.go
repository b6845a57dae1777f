package control

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/rtmp-server/rtmp-server/internal/logging"
)

var parseTests = []struct {
	name    string
	input   string
	want    Command
	wantErr error
	// errHas is a fragment the error must contain.
	errHas string
}{
	{name: "kill session", input: "kill-session>my_channel-1", want: Command{Name: KillSession, Channel: "my_channel-1"}},
	{name: "close stream", input: "close-stream>ch|0a1b-stream", want: Command{Name: CloseStream, Channel: "ch", StreamID: "0a1b-stream"}},
	{name: "trailing CRLF", input: "kill-session>ch\r\n", want: Command{Name: KillSession, Channel: "ch"}},
	{name: "surrounding spaces", input: " \tclose-stream>ch|id \n", want: Command{Name: CloseStream, Channel: "ch", StreamID: "id"}},
	{name: "stream id with spaces and symbols", input: "close-stream>ch|a b>c", want: Command{Name: CloseStream, Channel: "ch", StreamID: "a b>c"}},
	{name: "longest channel", input: "kill-session>" + strings.Repeat("a", MaxMessageSize-len("kill-session>")), want: Command{Name: KillSession, Channel: strings.Repeat("a", MaxMessageSize-len("kill-session>"))}},

	{name: "empty", input: "", wantErr: ErrMalformed, errHas: "empty message"},
	{name: "only whitespace", input: " \r\n", wantErr: ErrMalformed, errHas: "empty message"},
	{name: "no separator", input: "kill-session", wantErr: ErrMalformed, errHas: "no '>'"},
	{name: "unknown command", input: "restart>ch", wantErr: ErrUnknownCommand, errHas: `"restart"`},
	{name: "command name is case sensitive", input: "KILL-SESSION>ch", wantErr: ErrUnknownCommand},
	{name: "empty command name", input: ">ch", wantErr: ErrUnknownCommand},
	{name: "kill session empty channel", input: "kill-session>", wantErr: ErrMalformed, errHas: "empty channel"},
	{name: "kill session extra argument", input: "kill-session>ch|id", wantErr: ErrMalformed, errHas: "takes 1 argument(s), got 2"},
	{name: "close stream missing stream id", input: "close-stream>ch", wantErr: ErrMalformed, errHas: "takes 2 argument(s), got 1"},
	{name: "close stream empty stream id", input: "close-stream>ch|", wantErr: ErrMalformed, errHas: "empty stream id"},
	{name: "close stream empty channel", input: "close-stream>|id", wantErr: ErrMalformed, errHas: "empty channel"},
	{name: "close stream extra argument", input: "close-stream>ch|id|more", wantErr: ErrMalformed, errHas: "got 3"},
	{name: "channel with a dot", input: "kill-session>a.b", wantErr: ErrMalformed, errHas: "only letters"},
	{name: "channel with inner space", input: "kill-session>a b", wantErr: ErrMalformed, errHas: "only letters"},
	{name: "channel with non-ASCII letter", input: "kill-session>caña", wantErr: ErrMalformed, errHas: "only letters"},
	{name: "stream id with control character", input: "close-stream>ch|a\x00b", wantErr: ErrMalformed, errHas: "control character"},
	{name: "stream id invalid UTF-8", input: "close-stream>ch|\xff\xfe", wantErr: ErrMalformed, errHas: "UTF-8"},
	{name: "garbage bytes", input: "\x00\x01\x02\xff>\x1b[2J", wantErr: ErrUnknownCommand, errHas: `"???`},
	{name: "too long", input: "kill-session>" + strings.Repeat("a", MaxMessageSize), wantErr: ErrMalformed, errHas: "longer than 4096"},
	{name: "drain", input: "drain>box-1.example.net", want: Command{Name: Drain, Host: "box-1.example.net"}},
	{name: "undrain", input: "undrain>10.0.0.7:1935", want: Command{Name: Undrain, Host: "10.0.0.7:1935"}},
	{name: "drain empty host", input: "drain>", wantErr: ErrMalformed, errHas: "empty host"},
	{name: "drain host with a space", input: "drain>a b", wantErr: ErrMalformed, errHas: "host may hold only"},
	{name: "drain extra argument", input: "drain>a|b", wantErr: ErrMalformed, errHas: "takes 1 argument(s), got 2"},
	{name: "drain host too long", input: "drain>" + strings.Repeat("h", 254), wantErr: ErrMalformed, errHas: "longer than 253"},
	{name: "too long counting whitespace", input: "kill-session>ch" + strings.Repeat(" ", MaxMessageSize), wantErr: ErrMalformed, errHas: "longer than"},
}

func TestParseCommand(t *testing.T) {
	for _, tt := range parseTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCommand(tt.input)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ParseCommand(%q) = %+v, %v; want error %v", tt.input, got, err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.errHas) {
					t.Errorf("error %q does not contain %q", err, tt.errHas)
				}
				checkErrorText(t, err)
				return
			}
			if err != nil {
				t.Fatalf("ParseCommand(%q): %v", tt.input, err)
			}
			if got != tt.want {
				t.Fatalf("ParseCommand(%q) = %+v, want %+v", tt.input, got, tt.want)
			}
			// And back: the command formats to a message that parses to it.
			again, err := ParseCommand(got.String())
			if err != nil || again != got {
				t.Errorf("ParseCommand(%q) = %+v, %v; want %+v", got.String(), again, err, got)
			}
		})
	}
}

func TestCommandString(t *testing.T) {
	tests := []struct {
		name  string
		input Command
		want  string
	}{
		{"kill session", Command{Name: KillSession, Channel: "ch"}, "kill-session>ch"},
		{"close stream", Command{Name: CloseStream, Channel: "ch", StreamID: "s1"}, "close-stream>ch|s1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.input.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestErrorQuotesAtMost64Bytes(t *testing.T) {
	secretTail := "TAIL-THAT-MUST-NOT-APPEAR"
	msg := "kill-session>" + strings.Repeat("x", 100) + "." + secretTail
	_, err := ParseCommand(msg)
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), secretTail) || !strings.Contains(err.Error(), `"...`) {
		t.Errorf("error quotes too much or does not mark the cut: %q", err)
	}
	checkErrorText(t, err)
}

// checkErrorText checks an error is printable, short, and says which
// sentinel it is.
func checkErrorText(t *testing.T, err error) {
	t.Helper()
	text := err.Error()
	if !utf8.ValidString(text) {
		t.Errorf("error is not valid UTF-8: %q", text)
	}
	for _, r := range text {
		if unicode.IsControl(r) {
			t.Errorf("error holds control character %U: %q", r, text)
			break
		}
	}
	// The fixed wording plus at most logging.MaxQuoted quoted bytes, each of which
	// may be escaped to a few characters.
	if len(text) > 200+6*logging.MaxQuoted {
		t.Errorf("error is %d bytes long: %q", len(text), text)
	}
	if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownCommand) {
		t.Errorf("error %q wraps neither ErrMalformed nor ErrUnknownCommand", text)
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, tt := range parseTests {
		f.Add(tt.input)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		cmd, err := ParseCommand(msg)
		if err != nil {
			checkErrorText(t, err)
			return
		}
		if len(msg) > MaxMessageSize {
			t.Fatalf("accepted a %d-byte message", len(msg))
		}
		if (cmd.Name == Drain || cmd.Name == Undrain) != (cmd.Channel == "") || cmd.Channel != "" && checkChannel(cmd.Channel) != nil {
			t.Fatalf("accepted channel %q", cmd.Channel)
		}
		switch cmd.Name {
		case Drain, Undrain:
			if checkHost(cmd.Host) != nil || cmd.StreamID != "" {
				t.Fatalf("accepted %+v", cmd)
			}
		case KillSession:
			if cmd.StreamID != "" {
				t.Fatalf("kill-session with stream id %q", cmd.StreamID)
			}
		case CloseStream:
			if checkStreamID(cmd.StreamID) != nil || strings.Contains(cmd.StreamID, "|") {
				t.Fatalf("accepted stream id %q", cmd.StreamID)
			}
		default:
			t.Fatalf("accepted command name %q", cmd.Name)
		}
		again, err := ParseCommand(cmd.String())
		if err != nil || again != cmd {
			t.Fatalf("round trip of %+v: got %+v, %v", cmd, again, err)
		}
	})
}
