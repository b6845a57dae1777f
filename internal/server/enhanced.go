package server

import "github.com/rtmp-server/rtmp-server/internal/amf"

// What the server states about Enhanced RTMP in its connect result
// (enhanced-rtmp-v2, "Enhancing NetConnection connect Command"): it
// forwards every codec, multitrack streams and ModEx payloads (with their
// nanosecond timestamp offsets) untouched, and keeps codec headers per
// track for joining players. It decodes and encodes nothing.
const (
	fourCCCanForward = 0x04 // FourCcInfoMask.CanForward

	capsExMultitrack          = 0x02 // CapsExMask.Multitrack
	capsExModEx               = 0x04 // CapsExMask.ModEx
	capsExTimestampNanoOffset = 0x08 // CapsExMask.TimestampNanoOffset

	serverCapsEx = capsExMultitrack | capsExModEx | capsExTimestampNanoOffset
)

// enhancedFourCCs are the codecs Enhanced RTMP defines, listed in
// fourCcList for clients that read only that property.
var enhancedFourCCs = []string{"av01", "vp09", "vp08", "hvc1", "avc1", "ac-3", "ec-3", "Opus", ".mp3", "fLaC", "mp4a"}

// enhancedRTMPProperties are the connect result properties that state
// Enhanced RTMP support.
func enhancedRTMPProperties() []amf.Property {
	list := make(amf.StrictArray, len(enhancedFourCCs))
	for i, f := range enhancedFourCCs {
		list[i] = f
	}
	forwardAll := amf.Object{{Key: "*", Value: float64(fourCCCanForward)}}
	return []amf.Property{
		{Key: "fourCcList", Value: list},
		{Key: "videoFourCcInfoMap", Value: forwardAll},
		{Key: "audioFourCcInfoMap", Value: forwardAll},
		{Key: "capsEx", Value: float64(serverCapsEx)},
	}
}
