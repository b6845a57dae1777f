// Package handover is the format of the state one server process hands to
// the next through systemd's file descriptor store, beside the sockets of
// its live RTMP connections: for each connection, its protocol state
// (session.State, with the chunk reader's header state), the bytes read
// from the socket and not yet parsed, and its role; for each published
// stream, the metadata and codec headers that players joining later need.
//
// The encoding is JSON, one object:
//
//	{
//	  "format": "rtmp-server-handover",   // always
//	  "version": 1,                        // Version; another is refused
//	  "saved": "2026-11-30T09:00:00Z",     // when it was written
//	  "sessions": [{
//	    "id": 17,                          // the session ID in logs, kept
//	    "local": "127.0.0.1:1935",         // the socket's addresses: which
//	    "remote": "127.0.0.1:50412",       //   stored descriptor it is
//	    "flash_ver": "FMLE/3.0",
//	    "protocol": {...},                 // session.State (chunk.ReaderState in "in")
//	    "unread": "base64",                // read from the socket, not parsed
//	    "publisher": {"stream_id": "...", "started": "...",
//	                  "forward_urls": ["rtmp://..."]},     // or
//	    "player": {"chunk_size": 4096, "skip_to_keyframe": false,
//	               "paused": false, "no_audio": false, "no_video": false}
//	  }],
//	  "streams": [{"channel": "live", "packets": [
//	    {"type": 18, "timestamp": 0, "metadata": true, "payload": "base64"}]}]
//	}
//
// Decode checks the format, the version and every bound here (sizes,
// counts, addresses, which role goes with which protocol state); the
// protocol state itself is checked by session.Restore when a connection is
// adopted, as a peer's messages would be.
package handover

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/message"
	"github.com/rtmp-server/rtmp-server/internal/session"
)

// Format and Version identify the encoding; Decode refuses others.
const (
	Format  = "rtmp-server-handover"
	Version = 1
)

// Bounds of a state that Decode accepts.
const (
	// MaxStateBytes bounds the encoded state. Partial messages of
	// publishers stopped mid-message are its largest part.
	MaxStateBytes = 1 << 30
	// MaxSessions bounds the connections (config.MaxConnections' upper bound).
	MaxSessions = 1_000_000
	// MaxUnread bounds the unparsed bytes of one connection: at most a
	// read buffer (a publisher's is 64 KiB) plus what it took over.
	MaxUnread = 128 << 10
	// MaxStreamPackets bounds the metadata and codec headers of a stream
	// (one metadata and hub.MaxCodecHeaders).
	MaxStreamPackets = 1 + 64
	// MaxText bounds the strings of a session (channel, key, stream id,
	// flashVer, addresses, forward URLs) before the server's own checks.
	MaxText = 4096
	// MaxForwardURLs bounds the forward targets of one publish.
	MaxForwardURLs = 64
)

// ErrBadState is a state that Decode refuses.
var ErrBadState = errors.New("handover: invalid state")

// State is what one process hands to the next.
type State struct {
	Format   string    `json:"format"`
	Version  int       `json:"version"`
	Saved    time.Time `json:"saved"`
	Sessions []Session `json:"sessions"`
	Streams  []Stream  `json:"streams,omitempty"`
}

// Session is one connection past connect.
type Session struct {
	ID uint64 `json:"id"`
	// Local and Remote are the socket's addresses, which identify its
	// stored descriptor.
	Local    string `json:"local"`
	Remote   string `json:"remote"`
	FlashVer string `json:"flash_ver,omitempty"`
	// Protocol is the session's protocol state; its In holds the chunk
	// reader's, cut in the middle of a chunk or not.
	Protocol session.State `json:"protocol"`
	// Unread is what was read from the socket and not parsed: the
	// adopting process parses it first.
	Unread []byte `json:"unread,omitempty"`
	// Publisher or Player is set when Protocol publishes or plays.
	Publisher *Publisher `json:"publisher,omitempty"`
	Player    *Player    `json:"player,omitempty"`
}

// Publisher is a live publication: the callback's stream id lives on.
type Publisher struct {
	StreamID string    `json:"stream_id"`
	Started  time.Time `json:"started"`
	// ForwardURLs are the start callback's forward targets for this
	// publish; the next process forwards to them again.
	ForwardURLs []string `json:"forward_urls,omitempty"`
	// Claim is the publish's admission carried to the next process (a
	// fleet's claim value, see server.CarriedAdmission); empty without one.
	Claim string `json:"claim,omitempty"`
}

// Player is a playing connection. Everything queued for it was written
// before the state was saved, so it resumes with the next packet of its
// stream, or at the next keyframe when it was skipping to one.
type Player struct {
	// ChunkSize is the chunk size the player was last told.
	ChunkSize      uint32 `json:"chunk_size"`
	SkipToKeyframe bool   `json:"skip_to_keyframe,omitempty"`
	Paused         bool   `json:"paused,omitempty"`
	NoAudio        bool   `json:"no_audio,omitempty"`
	NoVideo        bool   `json:"no_video,omitempty"`
}

// Stream is what a published stream keeps for players that join later.
type Stream struct {
	Channel string   `json:"channel"`
	Packets []Packet `json:"packets"`
}

// Packet is a metadata message or a codec header, as the publisher sent it.
type Packet struct {
	Type      uint8  `json:"type"`
	Timestamp uint32 `json:"timestamp"`
	Metadata  bool   `json:"metadata,omitempty"`
	Payload   []byte `json:"payload"`
}

// Encode writes st as JSON, with Format and Version set.
func Encode(w io.Writer, st *State) error {
	st.Format, st.Version = Format, Version
	return json.NewEncoder(w).Encode(st)
}

// Decode reads a state written by Encode and checks it against the bounds
// above. Every error wraps ErrBadState and names what was wrong.
func Decode(r io.Reader) (*State, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxStateBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading: %v", ErrBadState, err)
	}
	if len(data) > MaxStateBytes {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrBadState, MaxStateBytes)
	}
	// The version first, so that another version's fields are reported as
	// a version mismatch rather than as unknown fields.
	var head struct {
		Format  string `json:"format"`
		Version int    `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadState, err)
	}
	if head.Format != Format {
		return nil, fmt.Errorf("%w: format %.64q, want %q", ErrBadState, head.Format, Format)
	}
	if head.Version != Version {
		return nil, fmt.Errorf("%w: version %d, this server reads version %d", ErrBadState, head.Version, Version)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var st State
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadState, err)
	}
	if err := st.check(); err != nil {
		return nil, err
	}
	return &st, nil
}

func (st *State) check() error {
	if len(st.Sessions) > MaxSessions {
		return fmt.Errorf("%w: %d sessions (at most %d)", ErrBadState, len(st.Sessions), MaxSessions)
	}
	ids := make(map[uint64]bool, len(st.Sessions))
	sockets := make(map[[2]netip.AddrPort]bool, len(st.Sessions))
	for i := range st.Sessions {
		s := &st.Sessions[i]
		if ids[s.ID] {
			return fmt.Errorf("%w: session %d twice", ErrBadState, s.ID)
		}
		ids[s.ID] = true
		pair, err := s.check()
		if err != nil {
			return fmt.Errorf("%w: session %d: %v", ErrBadState, s.ID, err)
		}
		if sockets[pair] {
			return fmt.Errorf("%w: session %d: connection %s-%s twice", ErrBadState, s.ID, pair[0], pair[1])
		}
		sockets[pair] = true
	}
	if len(st.Streams) > len(st.Sessions) {
		return fmt.Errorf("%w: %d streams for %d sessions", ErrBadState, len(st.Streams), len(st.Sessions))
	}
	channels := make(map[string]bool, len(st.Streams))
	for _, s := range st.Streams {
		if s.Channel == "" || len(s.Channel) > MaxText {
			return fmt.Errorf("%w: stream channel of %d bytes (want 1..%d)", ErrBadState, len(s.Channel), MaxText)
		}
		if channels[s.Channel] {
			return fmt.Errorf("%w: stream %.64q twice", ErrBadState, s.Channel)
		}
		channels[s.Channel] = true
		if len(s.Packets) > MaxStreamPackets {
			return fmt.Errorf("%w: stream %.64q: %d packets (at most %d)", ErrBadState, s.Channel, len(s.Packets), MaxStreamPackets)
		}
		for _, p := range s.Packets {
			switch {
			case p.Type != message.TypeAudio && p.Type != message.TypeVideo && p.Type != message.TypeDataAMF0 && p.Type != message.TypeDataAMF3:
				return fmt.Errorf("%w: stream %.64q: packet of message type %d", ErrBadState, s.Channel, p.Type)
			case len(p.Payload) > chunk.MaxMessageSize:
				return fmt.Errorf("%w: stream %.64q: packet of %d bytes (at most %d)", ErrBadState, s.Channel, len(p.Payload), chunk.MaxMessageSize)
			}
		}
	}
	return nil
}

// check checks one session and returns its socket's address pair.
func (s *Session) check() ([2]netip.AddrPort, error) {
	var pair [2]netip.AddrPort
	for i, a := range []string{s.Local, s.Remote} {
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			return pair, fmt.Errorf("address %.64q: %v", a, err)
		}
		pair[i] = ap
	}
	p := &s.Protocol
	switch {
	case len(s.FlashVer) > MaxText:
		return pair, fmt.Errorf("flashVer of %d bytes (at most %d)", len(s.FlashVer), MaxText)
	case len(s.Unread) > MaxUnread:
		return pair, fmt.Errorf("%d unread bytes (at most %d)", len(s.Unread), MaxUnread)
	case !p.Connected || p.App == "" || len(p.App) > MaxText:
		return pair, errors.New("not connected, or a channel of a bad length")
	case (s.Publisher != nil) != (p.Publishing != nil):
		return pair, errors.New("publisher role and publishing stream disagree")
	case (s.Player != nil) != (p.Playing != nil):
		return pair, errors.New("player role and playing stream disagree")
	case s.Publisher != nil && s.Player != nil:
		return pair, errors.New("both publisher and player")
	case p.Publishing != nil && (p.Publishing.Name == "" || len(p.Publishing.Name) > MaxText):
		return pair, errors.New("publishing stream key of a bad length")
	case p.Playing != nil && (p.Playing.Name == "" || len(p.Playing.Name) > MaxText):
		return pair, errors.New("playing stream key of a bad length")
	case s.Publisher != nil && len(s.Publisher.StreamID) > MaxText:
		return pair, errors.New("stream id too long")
	case s.Publisher != nil && len(s.Publisher.Claim) > MaxText:
		return pair, errors.New("claim too long")
	case s.Publisher != nil && len(s.Publisher.ForwardURLs) > MaxForwardURLs:
		return pair, fmt.Errorf("%d forward URLs (at most %d)", len(s.Publisher.ForwardURLs), MaxForwardURLs)
	case s.Player != nil && (s.Player.ChunkSize < 1 || s.Player.ChunkSize > chunk.MaxChunkSize):
		return pair, fmt.Errorf("player chunk size %d (want 1..%d)", s.Player.ChunkSize, chunk.MaxChunkSize)
	}
	if s.Publisher != nil {
		for _, u := range s.Publisher.ForwardURLs {
			if u == "" || len(u) > MaxText {
				return pair, fmt.Errorf("forward URL of %d bytes (want 1..%d)", len(u), MaxText)
			}
		}
	}
	return pair, nil
}
