package server

import (
	"encoding/binary"

	"github.com/rtmp-server/rtmp-server/internal/amf"
	"github.com/rtmp-server/rtmp-server/internal/chunk"
)

// Chunk stream IDs for what the server sends itself.
const (
	csidControl = 2
	csidCommand = 3
)

// User control event types.
const (
	eventStreamBegin  = 0
	eventStreamEOF    = 1
	eventSetBufferLen = 3
	eventPingRequest  = 6
	eventPingResponse = 7
)

// Values the server announces on connect.
const (
	windowAckSize     = 5_000_000
	peerBandwidth     = 5_000_000
	peerBandwidthDyn  = 2
	serverFMSVersion  = "FMS/3,0,1,123"
	serverCapabilites = 31
)

func controlMessage(typ uint8, payload []byte) *chunk.Message {
	return &chunk.Message{ChunkStreamID: csidControl, Type: typ, Payload: payload}
}

func setChunkSizeMessage(n uint32) *chunk.Message {
	return controlMessage(chunk.TypeSetChunkSize, binary.BigEndian.AppendUint32(nil, n))
}

func windowAckSizeMessage(n uint32) *chunk.Message {
	return controlMessage(chunk.TypeWindowAckSize, binary.BigEndian.AppendUint32(nil, n))
}

func ackMessage(n uint32) *chunk.Message {
	return controlMessage(chunk.TypeAck, binary.BigEndian.AppendUint32(nil, n))
}

func peerBandwidthMessage(n uint32, limit byte) *chunk.Message {
	return controlMessage(chunk.TypeSetPeerBandwidth, append(binary.BigEndian.AppendUint32(nil, n), limit))
}

func userControlMessage(event uint16, value uint32) *chunk.Message {
	p := binary.BigEndian.AppendUint16(nil, event)
	return controlMessage(chunk.TypeUserControl, binary.BigEndian.AppendUint32(p, value))
}

// commandMessage encodes an AMF0 command on message stream streamID.
func commandMessage(streamID uint32, values ...any) *chunk.Message {
	payload, err := amf.AppendAMF0All(nil, values...)
	if err != nil {
		// Only values built by this package are encoded here.
		panic("server: encoding a command: " + err.Error())
	}
	return &chunk.Message{ChunkStreamID: csidCommand, Type: chunk.TypeCommandAMF0, StreamID: streamID, Payload: payload}
}

func dataMessage(streamID uint32, values ...any) *chunk.Message {
	m := commandMessage(streamID, values...)
	m.Type = chunk.TypeDataAMF0
	return m
}

// statusMessage builds an onStatus with the NetStream/NetConnection code.
func statusMessage(streamID uint32, level, code, description string) *chunk.Message {
	info := amf.Object{{Key: "level", Value: level}, {Key: "code", Value: code}}
	if description != "" {
		info = append(info, amf.Property{Key: "description", Value: description})
	}
	return commandMessage(streamID, "onStatus", 0.0, nil, info)
}

func resultMessage(txn float64, values ...any) *chunk.Message {
	return commandMessage(0, append([]any{"_result", txn}, values...)...)
}

func errorMessage(txn float64, code, description string) *chunk.Message {
	return commandMessage(0, "_error", txn, nil, amf.Object{
		{Key: "level", Value: "error"},
		{Key: "code", Value: code},
		{Key: "description", Value: description},
	})
}
