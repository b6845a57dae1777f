package media

import (
	"errors"
	"fmt"
)

// Enhanced RTMP v2 (veovera enhanced-rtmp-v2): a message may carry several
// tracks (multitrack) and a chain of ModEx modifiers (such as a nanosecond
// timestamp offset) before its packet type. This file finds which tracks
// and codecs a message carries, so that codec headers can be kept per
// track; payloads are still forwarded untouched.

// Errors of the track parser. Every error wraps ErrMalformed.
var (
	ErrMalformed = errors.New("media: malformed Enhanced RTMP payload")
)

// Enhanced RTMP v2 packet types and values beyond those in media.go.
const (
	exPacketModEx          = 7 // video and audio: ModEx modifiers precede the packet type
	exAudioCodedFrames     = 1
	exAudioMultichannelCfg = 4
	exVideoCommandFrame    = frameTypeInfo

	multitrackOneTrack             = 0
	multitrackManyTracks           = 1
	multitrackManyTracksManyCodecs = 2

	modExTimestampOffsetNano = 0
)

// DefaultTrack is the track a player that knows nothing of multitrack
// plays: the one a GOP starts with.
const DefaultTrack = 0

// Track is one track of a message: its ID and codec. Classic FLV payloads
// and Enhanced RTMP payloads without multitrack are track 0.
type Track struct {
	ID uint8
	// Codec is the FourCC ("avc1", "hvc1", "av01", "Opus", "mp4a", ...);
	// classic FLV codecs with an Enhanced RTMP equivalent use it (AVC is
	// "avc1", HEVC "hvc1", AAC "mp4a", MP3 ".mp3"), others are "flv" and
	// the codec or sound format ID ("flv2" for Sorenson H.263).
	Codec string
}

// TrackInfo describes an audio or video message for per-track handling.
type TrackInfo struct {
	// Kind is what the message is for the GOP cache. A keyframe is one of
	// the default track: keyframes of other tracks are Frame, since a
	// player joining there would get the default track mid-GOP.
	Kind Kind
	// PacketType is the Enhanced RTMP packet type after any ModEx and
	// multitrack prefix (for classic payloads, the matching one:
	// SequenceStart for a sequence header, CodedFrames otherwise).
	PacketType uint8
	// Multitrack is set when the message used the multitrack packet type.
	Multitrack bool
	// Tracks lists the tracks the message carries, in order.
	Tracks []Track
	// defaultBody is the default track's body in a coded-frames message
	// (after the FourCC), for recognising a keyframe from the bitstream.
	defaultBody []byte
	// NanoOffset is the ModEx timestamp offset in nanoseconds, if any.
	NanoOffset uint32
}

// classicVideoFourCC and classicAudioFourCC name classic FLV codecs.
func classicVideoFourCC(codec byte) string {
	switch codec {
	case videoCodecAVC:
		return "avc1"
	case videoCodecHEVCFLV:
		return "hvc1"
	}
	return fmt.Sprintf("flv%d", codec)
}

func classicAudioFourCC(format byte) string {
	switch format {
	case audioFormatAAC:
		return "mp4a"
	case 2, 14: // MP3, MP3 8 kHz
		return ".mp3"
	}
	return fmt.Sprintf("flv%d", format)
}

// VideoTracks parses the tracks of a video message payload. Classic
// payloads carry track 0 with their codec. The Kind of a payload that is
// neither multitrack nor ModEx is Video's.
func VideoTracks(p []byte) (TrackInfo, error) {
	if len(p) == 0 {
		return TrackInfo{Kind: Info}, fmt.Errorf("%w: empty video payload", ErrMalformed)
	}
	if p[0]&0x80 == 0 {
		info := TrackInfo{Kind: Video(p), PacketType: exVideoCodedFrames,
			Tracks: []Track{{ID: 0, Codec: classicVideoFourCC(p[0] & 0x0F)}}}
		if info.Kind == SequenceHeader {
			info.PacketType = exVideoSequenceStart
		}
		return info, nil
	}
	frameType := (p[0] >> 4) & 0x07
	info, err := parseExTracks(p, exVideoMultitrack, "video")
	if err != nil {
		return info, err
	}
	switch {
	case !info.Multitrack && p[0]&0x0F != exPacketModEx:
		info.Kind = Video(p)
	case frameType == exVideoCommandFrame && info.PacketType != exVideoMetadata:
		info.Kind = Info
	default:
		switch info.PacketType {
		case exVideoSequenceStart, exVideoMPEG2TSSequenceStart:
			info.Kind = SequenceHeader
		case exVideoSequenceEnd:
			info.Kind = SequenceEnd
		case exVideoCodedFrames, exVideoCodedFramesX:
			info.Kind = Frame
			if frameType == frameTypeKey && info.carries(DefaultTrack) ||
				frameType != frameTypeInter && info.defaultRandomAccess() {
				info.Kind = Keyframe
			}
		default:
			info.Kind = Info
		}
	}
	return info, nil
}

// AudioTracks parses the tracks of an audio message payload. Classic
// payloads carry track 0 with their codec. Multichannel configurations
// count as sequence headers: a decoder needs them before frames.
func AudioTracks(p []byte) (TrackInfo, error) {
	if len(p) == 0 {
		return TrackInfo{Kind: Info}, fmt.Errorf("%w: empty audio payload", ErrMalformed)
	}
	if p[0]>>4 != audioFormatExHdr {
		info := TrackInfo{Kind: Audio(p), PacketType: exAudioCodedFrames,
			Tracks: []Track{{ID: 0, Codec: classicAudioFourCC(p[0] >> 4)}}}
		if info.Kind == SequenceHeader {
			info.PacketType = exAudioSequenceStart
		}
		return info, nil
	}
	info, err := parseExTracks(p, exAudioMultitrack, "audio")
	if err != nil {
		return info, err
	}
	switch info.PacketType {
	case exAudioSequenceStart, exAudioMultichannelCfg:
		info.Kind = SequenceHeader
	case exAudioSequenceEnd:
		info.Kind = SequenceEnd
	default:
		info.Kind = Frame
	}
	return info, nil
}

// defaultRandomAccess reports whether the default track's coded frame is
// a keyframe by its bitstream, for publishers that leave the frame type
// unset (see Video).
func (info *TrackInfo) defaultRandomAccess() bool {
	body := info.defaultBody
	if body == nil {
		return false
	}
	var codec string
	for _, t := range info.Tracks {
		if t.ID == DefaultTrack {
			codec = t.Codec
			break
		}
	}
	if info.PacketType == exVideoCodedFrames && (codec == "avc1" || codec == "hvc1") {
		// SI24 composition time offset before the data.
		if len(body) < 3 {
			return false
		}
		body = body[3:]
	}
	return RandomAccess(codec, body)
}

func (info *TrackInfo) carries(id uint8) bool {
	for _, t := range info.Tracks {
		if t.ID == id {
			return true
		}
	}
	return false
}

// maxTracksPerMessage bounds the tracks listed for one message: track IDs
// are one byte, so a message naming more repeats some.
const maxTracksPerMessage = 256

// parseExTracks reads an Enhanced RTMP header (the low nibble of p[0] is
// the packet type; multitrack is the packet type that announces several
// tracks): the ModEx chain, the multitrack header and each track's FourCC,
// ID and size. what names the media in errors.
func parseExTracks(p []byte, multitrack uint8, what string) (TrackInfo, error) {
	info := TrackInfo{Kind: Info}
	packetType := p[0] & 0x0F
	pos := 1
	for packetType == exPacketModEx {
		if pos >= len(p) {
			return info, fmt.Errorf("%w: %s ModEx size missing", ErrMalformed, what)
		}
		size := int(p[pos]) + 1
		pos++
		if size == 256 {
			if pos+2 > len(p) {
				return info, fmt.Errorf("%w: %s ModEx 16-bit size missing", ErrMalformed, what)
			}
			size = int(p[pos])<<8 | int(p[pos+1]) + 1
			pos += 2
		}
		if pos+size+1 > len(p) {
			return info, fmt.Errorf("%w: %s ModEx data of %d bytes truncated", ErrMalformed, what, size)
		}
		data := p[pos : pos+size]
		pos += size
		modExType := p[pos] >> 4
		packetType = p[pos] & 0x0F
		pos++
		if modExType == modExTimestampOffsetNano && len(data) >= 3 {
			info.NanoOffset = uint32(data[0])<<16 | uint32(data[1])<<8 | uint32(data[2])
		}
	}
	if packetType != multitrack {
		if pos+4 > len(p) {
			return info, fmt.Errorf("%w: %s FourCC truncated", ErrMalformed, what)
		}
		info.PacketType = packetType
		info.Tracks = []Track{{ID: 0, Codec: string(p[pos : pos+4])}}
		info.defaultBody = p[pos+4:]
		return info, nil
	}
	info.Multitrack = true
	if pos >= len(p) {
		return info, fmt.Errorf("%w: %s multitrack header missing", ErrMalformed, what)
	}
	mtType := p[pos] >> 4
	info.PacketType = p[pos] & 0x0F
	pos++
	if info.PacketType == multitrack || info.PacketType == exPacketModEx {
		return info, fmt.Errorf("%w: %s multitrack packet type %d inside multitrack", ErrMalformed, what, info.PacketType)
	}
	if mtType > multitrackManyTracksManyCodecs {
		return info, fmt.Errorf("%w: %s multitrack type %d unknown", ErrMalformed, what, mtType)
	}
	var codec string
	if mtType != multitrackManyTracksManyCodecs {
		if pos+4 > len(p) {
			return info, fmt.Errorf("%w: %s multitrack FourCC truncated", ErrMalformed, what)
		}
		codec = string(p[pos : pos+4])
		pos += 4
	}
	for pos < len(p) || len(info.Tracks) == 0 {
		if len(info.Tracks) == maxTracksPerMessage {
			return info, fmt.Errorf("%w: %s message with more than %d tracks", ErrMalformed, what, maxTracksPerMessage)
		}
		if mtType == multitrackManyTracksManyCodecs {
			if pos+4 > len(p) {
				return info, fmt.Errorf("%w: %s track FourCC truncated", ErrMalformed, what)
			}
			codec = string(p[pos : pos+4])
			pos += 4
		}
		if pos >= len(p) {
			return info, fmt.Errorf("%w: %s track ID missing", ErrMalformed, what)
		}
		info.Tracks = append(info.Tracks, Track{ID: p[pos], Codec: codec})
		pos++
		if mtType == multitrackOneTrack {
			if p[pos-1] == DefaultTrack {
				info.defaultBody = p[pos:]
			}
			break // the rest of the message is the track's body
		}
		if pos+3 > len(p) {
			return info, fmt.Errorf("%w: %s track size missing", ErrMalformed, what)
		}
		size := int(p[pos])<<16 | int(p[pos+1])<<8 | int(p[pos+2])
		pos += 3
		if pos+size > len(p) {
			return info, fmt.Errorf("%w: %s track %d of %d bytes truncated", ErrMalformed, what, p[pos-4], size)
		}
		if p[pos-4] == DefaultTrack && info.defaultBody == nil {
			info.defaultBody = p[pos : pos+size]
		}
		pos += size
	}
	return info, nil
}

// VideoKind is Video, except that Enhanced RTMP v2 multitrack and ModEx
// payloads are classified by their tracks (see VideoTracks): a keyframe is
// one of the default track. A malformed one is Info.
func VideoKind(p []byte) Kind {
	if len(p) == 0 || p[0]&0x80 == 0 || (p[0]&0x0F != exVideoMultitrack && p[0]&0x0F != exPacketModEx) {
		return Video(p)
	}
	info, err := VideoTracks(p)
	if err != nil {
		return Info
	}
	return info.Kind
}

// AudioKind is Audio, except that Enhanced RTMP v2 payloads are classified
// by their packet type after any ModEx and multitrack prefix (see
// AudioTracks). A malformed one is Info.
func AudioKind(p []byte) Kind {
	if len(p) == 0 || p[0]>>4 != audioFormatExHdr {
		return Audio(p)
	}
	info, err := AudioTracks(p)
	if err != nil {
		return Info
	}
	return info.Kind
}
