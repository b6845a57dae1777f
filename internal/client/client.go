// Package client is the RTMP client of the project: it publishes (the
// server's forwards to other servers, the load tool) and plays (tests),
// reads a server's status codes exactly, and is built on the message and
// session layers the server uses, so neither spells a message type, a
// chunk stream or a command as a number or a literal of its own.
package client

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/amf"
	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/handshake"
	"github.com/rtmp-server/rtmp-server/internal/message"
	"github.com/rtmp-server/rtmp-server/internal/session"
)

// FlashVer is the flashVer the client tells servers at connect: FMLE (the
// encoders' convention, which some servers look for in a publisher) and
// this project's name.
const FlashVer = "FMLE/3.0 (compatible; rtmp-server client)"

// ErrStatus is returned when the server answers with an error status.
var ErrStatus = errors.New("client: error status")

// Status is an onStatus or _error info object.
type Status struct {
	Level, Code, Description string
}

func (s Status) Error() string { return s.Code + ": " + s.Description }

// Conn is one client connection. Reading (ReadMessage and the calls that
// wait for an answer) is for one goroutine at a time; writing (WriteMessage,
// WriteWire, WriteMedia, Call, SetChunkSize, and the session's own answers
// to pings and windows) may happen on another goroutine, as a forward's
// writer does while its reader watches the target's statuses. Close may be
// called from any goroutine.
type Conn struct {
	nc net.Conn
	s  *session.Session

	wmu sync.Mutex    // guards w, txn and every write to nc
	w   *chunk.Writer // guarded by wmu
	txn float64       // guarded by wmu
	// Pending holds media and data messages read while waiting for a reply.
	Pending []*chunk.Message
}

// Dial connects to addr over TCP (or TLS when tlsConfig is not nil) and
// runs the handshake.
func Dial(addr string, tlsConfig *tls.Config, timeout time.Duration) (*Conn, error) {
	d := net.Dialer{Timeout: timeout}
	var nc net.Conn
	var err error
	if tlsConfig != nil {
		nc, err = tls.DialWithDialer(&d, "tcp", addr, tlsConfig)
	} else {
		nc, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	return Handshake(nc, timeout)
}

// Handshake runs the client handshake on nc, a connection the caller made
// (from a chosen local address, say), within timeout. On failure it closes
// nc.
func Handshake(nc net.Conn, timeout time.Duration) (*Conn, error) {
	_ = nc.SetDeadline(time.Now().Add(timeout))
	br := bufio.NewReader(nc)
	if err := handshake.Client(struct {
		io.Reader
		io.Writer
	}{br, nc}, nil); err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	c := &Conn{nc: nc, w: chunk.NewWriter(nc)}
	c.s = session.New(chunk.NewReader(br), c.WriteMessage)
	return c, nil
}

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Close closes the connection.
func (c *Conn) Close() error { return c.nc.Close() }

// CloseWrite ends what this side sends (a TCP half-close, or TLS
// close_notify), so that the peer reads to the end and closes.
func (c *Conn) CloseWrite() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.nc.Close()
}

// SetDeadline sets the read and write deadline.
func (c *Conn) SetDeadline(t time.Time) error { return c.nc.SetDeadline(t) }

// SetChunkSize tells the server and switches the writer, in one step for
// writers on other goroutines.
func (c *Conn) SetChunkSize(n uint32) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.w.WriteMessage(message.SetChunkSize{Size: n}.Chunk()); err != nil {
		return err
	}
	c.w.SetChunkSize(n)
	return nil
}

// ChunkSize reports the chunk size of what this side sends.
func (c *Conn) ChunkSize() uint32 {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.w.ChunkSize()
}

// Call sends a command with the next transaction id.
func (c *Conn) Call(streamID uint32, name string, args ...any) (float64, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.txn++
	m, err := (&message.Command{StreamID: streamID, Name: name, Txn: c.txn, Values: args}).Encode()
	if err != nil {
		return 0, err
	}
	return c.txn, c.w.WriteMessage(m)
}

// WriteMessage sends a raw message.
func (c *Conn) WriteMessage(m *chunk.Message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.w.WriteMessage(m)
}

// WriteWire writes messages already encoded into chunks (with this side's
// chunk size, see SetChunkSize), in one writev, before deadline (none when
// zero). bufs is consumed as net.Buffers consumes it.
func (c *Conn) WriteWire(bufs *net.Buffers, deadline time.Time) (int64, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(deadline)
	n, err := bufs.WriteTo(c.nc)
	_ = c.nc.SetWriteDeadline(time.Time{})
	return n, err
}

// ReadMessage reads the next message. The session answers ping requests
// (which are not returned) and acknowledges what the server's window asks.
func (c *Conn) ReadMessage() (*chunk.Message, error) {
	for {
		msg, err := c.s.ReadMessage()
		if err != nil {
			return nil, err
		}
		if uc, ok := msg.(message.UserControl); ok && uc.Event == message.EventPingRequest {
			continue
		}
		return msg.Chunk(), nil
	}
}

// State returns the protocol state of the connection.
func (c *Conn) State() session.State { return c.s.State() }

// Command is a decoded command message.
type Command struct{ *message.Command }

// StatusOf returns the info object of an onStatus/_result/_error command.
func (cmd Command) StatusOf() Status {
	level, code, description := cmd.StatusInfo()
	return Status{Level: level, Code: code, Description: description}
}

// ReadCommand reads until a command message arrives; media read meanwhile
// is kept in Pending.
func (c *Conn) ReadCommand() (*Command, error) {
	for {
		m, err := c.ReadMessage()
		if err != nil {
			return nil, err
		}
		switch m.Type {
		case message.TypeCommandAMF0:
		case message.TypeAudio, message.TypeVideo, message.TypeDataAMF0:
			c.Pending = append(c.Pending, m)
			continue
		default:
			continue
		}
		cmd, err := message.Decode(m)
		if err != nil {
			return nil, fmt.Errorf("client: bad command: %w", err)
		}
		return &Command{cmd.(*message.Command)}, nil
	}
}

// waitResult reads until the reply to txn; an _error becomes a Status error.
func (c *Conn) waitResult(txn float64) (*Command, error) {
	for {
		cmd, err := c.ReadCommand()
		if err != nil {
			return nil, err
		}
		if cmd.Txn != txn || (cmd.Name != message.CommandResult && cmd.Name != message.CommandError) {
			continue
		}
		if cmd.Name == message.CommandError {
			return cmd, fmt.Errorf("%w: %w", ErrStatus, cmd.StatusOf())
		}
		return cmd, nil
	}
}

// Connect sends connect for app and waits for the result, with the tcUrl
// a local server would have.
func (c *Conn) Connect(app string) error {
	return c.ConnectURL(app, "rtmp://localhost/"+app)
}

// ConnectURL sends connect for app with tcURL (the URL of the application,
// as the target knows itself) and waits for the result.
func (c *Conn) ConnectURL(app, tcURL string) error {
	return c.ConnectWith(app, tcURL)
}

// ConnectWith is ConnectURL with more properties in the command object
// (such as Enhanced RTMP's capsEx or fourCcList).
func (c *Conn) ConnectWith(app, tcURL string, more ...amf.Property) error {
	txn, err := c.Call(0, message.CommandConnect, append(amf.Object{
		{Key: "app", Value: app},
		{Key: "type", Value: "nonprivate"},
		{Key: "flashVer", Value: FlashVer},
		{Key: "tcUrl", Value: tcURL},
	}, more...))
	if err != nil {
		return err
	}
	if _, err = c.waitResult(txn); err != nil {
		return err
	}
	c.s.ConnectAccepted(app)
	return nil
}

// CreateStream creates a stream and remembers its ID for Publish and Play.
func (c *Conn) CreateStream() (uint32, error) {
	txn, err := c.Call(0, message.CommandCreateStream, nil)
	if err != nil {
		return 0, err
	}
	res, err := c.waitResult(txn)
	if err != nil {
		return 0, err
	}
	for _, v := range res.Values {
		if f, ok := v.(float64); ok {
			c.s.StreamCreated(uint32(f))
			return uint32(f), nil
		}
	}
	return 0, errors.New("client: createStream result without a stream id")
}

// waitStatus reads until an onStatus and returns it; an error level is an error.
func (c *Conn) waitStatus() (Status, error) {
	for {
		cmd, err := c.ReadCommand()
		if err != nil {
			return Status{}, err
		}
		if cmd.Name != message.CommandOnStatus {
			continue
		}
		st := cmd.StatusOf()
		if st.Level == message.LevelError {
			return st, fmt.Errorf("%w: %w", ErrStatus, st)
		}
		return st, nil
	}
}

// Publish publishes key on the created stream and returns the status.
func (c *Conn) Publish(key string) (Status, error) {
	if _, err := c.Call(c.StreamID(), message.CommandPublish, nil, key, message.PublishLive); err != nil {
		return Status{}, err
	}
	st, err := c.waitStatus()
	if err == nil {
		c.s.Publish(c.StreamID(), key)
	}
	return st, err
}

// Play plays name on the created stream and returns the first status that
// is not Play.Reset (normally NetStream.Play.Start).
func (c *Conn) Play(name string) (Status, error) {
	if _, err := c.Call(c.StreamID(), message.CommandPlay, nil, name); err != nil {
		return Status{}, err
	}
	for {
		st, err := c.waitStatus()
		if err != nil {
			return st, err
		}
		if st.Code != message.CodePlayReset {
			c.s.Play(c.StreamID(), name)
			return st, nil
		}
	}
}

// WaitStatus returns the next onStatus (exported for tests that expect
// notifications such as UnpublishNotify).
func (c *Conn) WaitStatus() (Status, error) { return c.waitStatus() }

// StreamID returns the stream created by CreateStream.
func (c *Conn) StreamID() uint32 { return c.s.LastStreamID() }

// WriteMedia sends an audio, video or data message on the created stream.
func (c *Conn) WriteMedia(typ uint8, timestamp uint32, payload []byte) error {
	csid := message.CSIDAudio
	if typ == message.TypeVideo {
		csid = message.CSIDVideo
	}
	return c.WriteMessage(&chunk.Message{ChunkStreamID: csid, Timestamp: timestamp, Type: typ, StreamID: c.StreamID(), Payload: payload})
}
