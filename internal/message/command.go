package message

import (
	"fmt"

	"github.com/rtmp-server/rtmp-server/internal/amf"
	"github.com/rtmp-server/rtmp-server/internal/chunk"
)

// MaxCommandName is the longest command name Decode accepts, in bytes; a
// longer one is malformed (RTMP's command names are a few words long).
const MaxCommandName = 256

// Command is an AMF0 or AMF3 command message: a name, a transaction ID,
// then the command object and the arguments.
type Command struct {
	StreamID uint32 // the message stream it is on
	AMF3     bool   // a type-17 message: one format byte, then AMF0 values
	Name     string
	Txn      float64 // 0 when the peer expects no reply (or sent no number)
	Values   []any   // after the transaction ID: the command object, then the arguments
}

// Object returns the command object (often nil, an AMF null).
func (c *Command) Object() any {
	if len(c.Values) > 0 {
		return c.Values[0]
	}
	return nil
}

// Arg returns argument i (after the command object), or nil.
func (c *Command) Arg(i int) any {
	if i+1 < len(c.Values) {
		return c.Values[i+1]
	}
	return nil
}

// ArgString returns argument i if it is a string, else "".
func (c *Command) ArgString(i int) string {
	s, _ := c.Arg(i).(string)
	return s
}

// ArgBool returns argument i as a flag: a boolean, or a number not 0.
func (c *Command) ArgBool(i int) bool {
	switch v := c.Arg(i).(type) {
	case bool:
		return v
	case float64:
		return v != 0
	}
	return false
}

// ArgNumber returns argument i if it is a number.
func (c *Command) ArgNumber(i int) (float64, bool) {
	f, ok := c.Arg(i).(float64)
	return f, ok
}

// StatusInfo returns the level, code and description of the first info
// object among the values (that of an onStatus, _result or _error).
func (c *Command) StatusInfo() (level, code, description string) {
	for _, v := range c.Values {
		if o, ok := v.(amf.Object); ok && o.String("code") != "" {
			return o.String("level"), o.String("code"), o.String("description")
		}
	}
	return "", "", ""
}

// Encode encodes the command; it fails if a value has a type package amf
// does not encode.
func (c *Command) Encode() (*chunk.Message, error) {
	var payload []byte
	typ := TypeCommandAMF0
	if c.AMF3 {
		payload, typ = []byte{0}, TypeCommandAMF3
	}
	payload, err := amf.AppendAMF0(payload, c.Name)
	if err == nil {
		payload, err = amf.AppendAMF0(payload, c.Txn)
	}
	if err == nil {
		payload, err = amf.AppendAMF0All(payload, c.Values...)
	}
	if err != nil {
		return nil, fmt.Errorf("message: encoding command %q: %w", c.Name, err)
	}
	return &chunk.Message{ChunkStreamID: CSIDCommand, Type: typ, StreamID: c.StreamID, Payload: payload}, nil
}

// Chunk encodes the command. It panics if a value cannot be encoded: use
// it for commands built from known values (the builders of this package),
// and Encode for the others.
func (c *Command) Chunk() *chunk.Message {
	m, err := c.Encode()
	if err != nil {
		panic(err.Error())
	}
	return m
}

// decodeCommand decodes the AMF0 values of a command message.
func decodeCommand(m *chunk.Message, body []byte, amf3 bool) (*Command, error) {
	vals, err := amf.DecodeAMF0All(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedCommand, err)
	}
	if len(vals) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrMalformedCommand)
	}
	name, ok := vals[0].(string)
	if !ok {
		return nil, fmt.Errorf("%w: name is %T, not a string", ErrMalformedCommand, vals[0])
	}
	if len(name) > MaxCommandName {
		return nil, fmt.Errorf("%w: name of %d bytes (at most %d)", ErrMalformedCommand, len(name), MaxCommandName)
	}
	cmd := &Command{StreamID: m.StreamID, AMF3: amf3, Name: name}
	if len(vals) > 1 {
		cmd.Txn, _ = vals[1].(float64)
	}
	if len(vals) > 2 {
		cmd.Values = vals[2:]
	}
	return cmd, nil
}

// Status builds an onStatus on message stream streamID with the
// NetStream/NetConnection code; an empty description is left out.
func Status(streamID uint32, level, code, description string) *Command {
	info := amf.Object{{Key: "level", Value: level}, {Key: "code", Value: code}}
	if description != "" {
		info = append(info, amf.Property{Key: "description", Value: description})
	}
	return &Command{StreamID: streamID, Name: "onStatus", Values: []any{nil, info}}
}

// Result builds the _result of transaction txn with values (the command
// object, then the information).
func Result(txn float64, values ...any) *Command {
	return &Command{Name: "_result", Txn: txn, Values: values}
}

// Error builds the _error of transaction txn with an error-level info.
func Error(txn float64, code, description string) *Command {
	return &Command{Name: "_error", Txn: txn, Values: []any{nil, amf.Object{
		{Key: "level", Value: "error"},
		{Key: "code", Value: code},
		{Key: "description", Value: description},
	}}}
}

// DataValues builds an AMF0 data message of values on message stream
// streamID, sent on the command chunk stream.
func DataValues(streamID uint32, values ...any) *Data {
	payload, err := amf.AppendAMF0All(nil, values...)
	if err != nil {
		panic("message: encoding a data message: " + err.Error())
	}
	return &Data{ChunkStreamID: CSIDCommand, Type: TypeDataAMF0, StreamID: streamID, Payload: payload}
}
