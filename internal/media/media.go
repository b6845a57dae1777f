// Package media classifies the payloads of RTMP audio and video messages
// (FLV tag bodies), classic and Enhanced RTMP, without decoding them: which
// ones are codec sequence headers and which are keyframes (by the frame
// type, or by the bitstream when the frame type is not set; see
// RandomAccess). That is all the GOP cache needs; payloads are always
// forwarded untouched.
package media

// Kind says what a media payload is for the GOP cache.
type Kind uint8

const (
	// Frame is ordinary media.
	Frame Kind = iota
	// Keyframe is a video frame a decoder can start from.
	Keyframe
	// SequenceHeader carries codec configuration (AVC/HEVC decoder
	// configuration record, AAC AudioSpecificConfig, Enhanced RTMP
	// SequenceStart) that a player needs before any frame.
	SequenceHeader
	// SequenceEnd marks the end of a coded sequence.
	SequenceEnd
	// Info is a video info/command frame or other payload that carries no picture.
	Info
)

func (k Kind) String() string {
	switch k {
	case Keyframe:
		return "keyframe"
	case SequenceHeader:
		return "sequence-header"
	case SequenceEnd:
		return "sequence-end"
	case Info:
		return "info"
	}
	return "frame"
}

// Classic FLV codec and format IDs that carry a sequence header.
const (
	videoCodecAVC      = 7
	videoCodecHEVCFLV  = 12 // HEVC in classic FLV tags, as some Chinese CDNs and OBS forks send it
	audioFormatAAC     = 10
	audioFormatExHdr   = 9 // Enhanced RTMP v2 audio: the low nibble is a packet type
	frameTypeKey       = 1
	frameTypeInter     = 2
	frameTypeInfo      = 5
	avcPacketSeqHeader = 0
	avcPacketNALU      = 1
	avcPacketEndOfSeq  = 2
)

// Enhanced RTMP video packet types.
const (
	exVideoSequenceStart        = 0
	exVideoCodedFrames          = 1
	exVideoSequenceEnd          = 2
	exVideoCodedFramesX         = 3
	exVideoMetadata             = 4
	exVideoMPEG2TSSequenceStart = 5
	exVideoMultitrack           = 6
)

// Enhanced RTMP audio packet types.
const (
	exAudioSequenceStart = 0
	exAudioSequenceEnd   = 2
	exAudioMultitrack    = 5
)

// Video classifies a video message payload.
func Video(p []byte) Kind {
	if len(p) == 0 {
		return Info
	}
	frameType := (p[0] >> 4) & 0x07
	if p[0]&0x80 != 0 { // Enhanced RTMP: IsExHeader
		packetType := p[0] & 0x0F
		if frameType == frameTypeInfo {
			return Info
		}
		switch packetType {
		case exVideoSequenceStart, exVideoMPEG2TSSequenceStart:
			return SequenceHeader
		case exVideoSequenceEnd:
			return SequenceEnd
		case exVideoMetadata:
			return Info
		case exVideoMultitrack:
			// The inner packet type is in the low nibble of the next byte.
			if len(p) > 1 && p[1]&0x0F == exVideoSequenceStart {
				return SequenceHeader
			}
		}
		if frameType == frameTypeKey {
			return Keyframe
		}
		if frameType != frameTypeInter && exKeyframe(p) {
			return Keyframe
		}
		return Frame
	}
	if frameType == frameTypeInfo {
		return Info
	}
	codec := p[0] & 0x0F
	if codec == videoCodecAVC || codec == videoCodecHEVCFLV {
		if len(p) < 2 {
			return Info
		}
		switch p[1] {
		case avcPacketSeqHeader:
			return SequenceHeader
		case avcPacketEndOfSeq:
			return SequenceEnd
		}
	}
	if frameType == frameTypeKey {
		return Keyframe
	}
	if frameType != frameTypeInter && classicKeyframe(p) {
		return Keyframe
	}
	return Frame
}

// exKeyframe reports whether the Enhanced RTMP coded frame p, whose frame
// type is neither key nor inter, is a keyframe by its bitstream.
func exKeyframe(p []byte) bool {
	if len(p) < 5 {
		return false
	}
	fourCC := string(p[1:5])
	switch p[0] & 0x0F {
	case exVideoCodedFrames:
		if fourCC == "avc1" || fourCC == "hvc1" {
			// SI24 composition time offset before the data.
			return len(p) >= 8 && RandomAccess(fourCC, p[8:])
		}
		return RandomAccess(fourCC, p[5:])
	case exVideoCodedFramesX:
		return RandomAccess(fourCC, p[5:])
	}
	return false
}

// classicKeyframe reports whether the classic AVC or HEVC NALU packet p,
// whose frame type is neither key nor inter, is a keyframe by its
// bitstream.
func classicKeyframe(p []byte) bool {
	if len(p) < 5 || p[1] != avcPacketNALU {
		return false
	}
	switch p[0] & 0x0F {
	case videoCodecAVC:
		return RandomAccess("avc1", p[5:])
	case videoCodecHEVCFLV:
		return RandomAccess("hvc1", p[5:])
	}
	return false
}

// Audio classifies an audio message payload. Audio frames are never
// keyframes: every one can be decoded once the sequence header is known.
func Audio(p []byte) Kind {
	if len(p) == 0 {
		return Info
	}
	format := p[0] >> 4
	switch format {
	case audioFormatAAC:
		if len(p) > 1 && p[1] == 0 {
			return SequenceHeader
		}
	case audioFormatExHdr:
		switch p[0] & 0x0F {
		case exAudioSequenceStart:
			return SequenceHeader
		case exAudioSequenceEnd:
			return SequenceEnd
		case exAudioMultitrack:
			if len(p) > 1 && p[1]&0x0F == exAudioSequenceStart {
				return SequenceHeader
			}
		}
	}
	return Frame
}

// VideoFourCC returns the codec FourCC of an Enhanced RTMP video payload
// ("hvc1", "av01", "vp09", ...), or "" for classic payloads.
func VideoFourCC(p []byte) string {
	if len(p) < 5 || p[0]&0x80 == 0 {
		return ""
	}
	if p[0]&0x0F == exVideoMultitrack {
		if len(p) < 6 {
			return ""
		}
		return string(p[2:6])
	}
	return string(p[1:5])
}
