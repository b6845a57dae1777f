package main

import (
	"encoding/binary"
	"math"
	"time"
)

// A synthetic stream is classic FLV framing around made-up bytes: an AVC
// sequence header with a real SPS and PPS (1280x720, Baseline), an AAC-LC
// sequence header (44.1 kHz stereo), then one length-prefixed NAL unit per
// video frame and raw AAC bytes per audio frame. Servers only look at the
// framing, so the content does not need to decode.
//
// Every frame carries a stamp right after its codec header (for video, after
// the 5-byte AVC header, the 4-byte NAL length and the NAL header byte):
//
//	magic [3]byte "rbs"
//	flags byte    stampMeasured when sent inside the measurement window
//	seq   uint64  big endian, per publisher, audio and video together
//	sent  int64   big endian, nanoseconds since the tool started (monotonic)
const (
	stampLen      = 20
	stampMeasured = 1 << 0

	avcHeaderLen   = 5
	videoStampAt   = avcHeaderLen + 4 + 1 // after the NAL length and NAL header
	audioStampAt   = 2                    // after the AAC header
	minVideoFrame  = videoStampAt + stampLen
	minAudioFrame  = audioStampAt + stampLen
	aacFrameLength = 1024  // samples per AAC frame
	aacSampleRate  = 44100 // Hz
	// keyframeWeight is how many inter frames one keyframe weighs.
	keyframeWeight = 6
	// maxAudioBitrate is the audio share of the bitrate when there is room.
	maxAudioBitrate = 128_000
)

var stampMagic = [3]byte{'r', 'b', 's'}

// putStamp writes a stamp at p[0:stampLen].
func putStamp(p []byte, flags byte, seq uint64, sent int64) {
	copy(p, stampMagic[:])
	p[3] = flags
	binary.BigEndian.PutUint64(p[4:], seq)
	binary.BigEndian.PutUint64(p[12:], uint64(sent))
}

// readStamp finds the stamp in an audio or video payload. ok is false for
// payloads without one (sequence headers, other publishers' media).
func readStamp(typ uint8, p []byte) (flags byte, seq uint64, sent int64, ok bool) {
	at := audioStampAt
	if typ == typeVideo {
		at = videoStampAt
	}
	if len(p) < at+stampLen {
		return 0, 0, 0, false
	}
	s := p[at : at+stampLen]
	if s[0] != stampMagic[0] || s[1] != stampMagic[1] || s[2] != stampMagic[2] {
		return 0, 0, 0, false
	}
	return s[3], binary.BigEndian.Uint64(s[4:]), int64(binary.BigEndian.Uint64(s[12:])), true
}

// Message types, repeated here so the stamp code does not depend on chunk.
const (
	typeAudio uint8 = 8
	typeVideo uint8 = 9
)

// streamShape is what a publisher sends: rates and frame sizes.
type streamShape struct {
	fps           float64
	framesPerGOP  int
	keyframeBytes int
	interBytes    int
	audioBytes    int
	audioPerSec   float64
}

// newStreamShape sizes frames so that video plus audio payloads add up to
// bitrate bits per second.
func newStreamShape(bitrate int, fps float64, gop time.Duration) streamShape {
	s := streamShape{fps: fps, audioPerSec: float64(aacSampleRate) / aacFrameLength}
	s.framesPerGOP = max(1, int(math.Round(gop.Seconds()*fps)))
	audioBitrate := min(maxAudioBitrate, bitrate/8)
	s.audioBytes = max(minAudioFrame, int(float64(audioBitrate)/8/s.audioPerSec))
	videoBytesPerGOP := float64(bitrate-audioBitrate) / 8 * float64(s.framesPerGOP) / fps
	inter := videoBytesPerGOP / float64(s.framesPerGOP-1+keyframeWeight)
	s.interBytes = max(minVideoFrame, int(inter))
	s.keyframeBytes = max(minVideoFrame, int(inter*keyframeWeight))
	return s
}

// frameSet holds one reusable payload per kind of frame; only stamps and
// the frame-type byte change between sends.
type frameSet struct {
	keyframe, inter, audio []byte
}

func newFrameSet(s streamShape) frameSet {
	return frameSet{
		keyframe: videoFrame(s.keyframeBytes, true),
		inter:    videoFrame(s.interBytes, false),
		audio:    audioFrame(s.audioBytes),
	}
}

// videoFrame is an AVC NALU packet of size bytes holding one IDR or non-IDR
// slice NAL unit.
func videoFrame(size int, key bool) []byte {
	p := make([]byte, size)
	frameType, nalHeader := byte(2), byte(0x41) // inter frame, non-IDR slice
	if key {
		frameType, nalHeader = 1, 0x65 // keyframe, IDR slice
	}
	p[0] = frameType<<4 | 7 // AVC
	p[1] = 1                // AVC NALU
	// p[2:5]: composition time offset 0
	binary.BigEndian.PutUint32(p[5:], uint32(size-9))
	p[9] = nalHeader
	fill(p[videoStampAt+stampLen:])
	return p
}

// audioFrame is an AAC raw packet of size bytes.
func audioFrame(size int) []byte {
	p := make([]byte, size)
	p[0] = aacTagHeader
	p[1] = 1 // AAC raw
	fill(p[audioStampAt+stampLen:])
	return p
}

// aacTagHeader is the FLV audio tag byte: AAC, 44 kHz, 16-bit, stereo.
const aacTagHeader = 10<<4 | 3<<2 | 1<<1 | 1

// fill writes bytes that contain no start codes and compress poorly.
func fill(p []byte) {
	x := uint32(0x9E3779B9)
	for i := range p {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		p[i] = byte(x) | 1
	}
}

// avcSequenceHeader is the AVC sequence header tag body.
func avcSequenceHeader() []byte {
	sps, pps := spsBaseline720p(), ppsBaseline()
	p := []byte{1<<4 | 7, 0, 0, 0, 0} // keyframe, AVC, sequence header, cts 0
	p = append(p, 1, sps[1], sps[2], sps[3], 0xFF, 0xE1)
	p = binary.BigEndian.AppendUint16(p, uint16(len(sps)))
	p = append(p, sps...)
	p = append(p, 1)
	p = binary.BigEndian.AppendUint16(p, uint16(len(pps)))
	return append(p, pps...)
}

// aacSequenceHeader is the AAC sequence header tag body: an
// AudioSpecificConfig for AAC-LC, 44.1 kHz, two channels.
func aacSequenceHeader() []byte {
	const objectType, freqIndex, channels = 2, 4, 2
	asc := uint16(objectType)<<11 | uint16(freqIndex)<<7 | uint16(channels)<<3
	return []byte{aacTagHeader, 0, byte(asc >> 8), byte(asc)}
}

// bitWriter writes the Exp-Golomb coded fields of H.264 parameter sets.
type bitWriter struct {
	b    []byte
	nbit int
}

func (w *bitWriter) bit(v uint) {
	if w.nbit%8 == 0 {
		w.b = append(w.b, 0)
	}
	if v != 0 {
		w.b[len(w.b)-1] |= 0x80 >> (w.nbit % 8)
	}
	w.nbit++
}

func (w *bitWriter) bits(v uint, n int) {
	for i := n - 1; i >= 0; i-- {
		w.bit(v >> i & 1)
	}
}

// ue writes an unsigned Exp-Golomb code.
func (w *bitWriter) ue(v uint) {
	v++
	n := 0
	for x := v; x > 1; x >>= 1 {
		n++
	}
	w.bits(0, n)
	w.bits(v, n+1)
}

// rbsp ends the payload with the stop bit and alignment, and adds
// emulation prevention bytes.
func (w *bitWriter) rbsp() []byte {
	w.bit(1)
	out := make([]byte, 0, len(w.b)+4)
	zeros := 0
	for _, c := range w.b {
		if zeros >= 2 && c <= 3 {
			out = append(out, 3)
			zeros = 0
		}
		out = append(out, c)
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

// spsBaseline720p is a sequence parameter set NAL unit: Baseline profile,
// level 3.1, 1280x720 progressive, one reference frame.
func spsBaseline720p() []byte {
	w := &bitWriter{}
	w.bits(66, 8)   // profile_idc: Baseline
	w.bits(0xC0, 8) // constraint_set0_flag, constraint_set1_flag
	w.bits(31, 8)   // level_idc 3.1
	w.ue(0)         // seq_parameter_set_id
	w.ue(0)         // log2_max_frame_num_minus4
	w.ue(2)         // pic_order_cnt_type
	w.ue(1)         // max_num_ref_frames
	w.bit(0)        // gaps_in_frame_num_value_allowed_flag
	w.ue(1280/16 - 1)
	w.ue(720/16 - 1)
	w.bit(1) // frame_mbs_only_flag
	w.bit(1) // direct_8x8_inference_flag
	w.bit(0) // frame_cropping_flag
	w.bit(0) // vui_parameters_present_flag
	return append([]byte{0x67}, w.rbsp()...)
}

// ppsBaseline is the picture parameter set that goes with spsBaseline720p.
func ppsBaseline() []byte {
	w := &bitWriter{}
	w.ue(0)      // pic_parameter_set_id
	w.ue(0)      // seq_parameter_set_id
	w.bit(0)     // entropy_coding_mode_flag: CAVLC
	w.bit(0)     // bottom_field_pic_order_in_frame_present_flag
	w.ue(0)      // num_slice_groups_minus1
	w.ue(0)      // num_ref_idx_l0_default_active_minus1
	w.ue(0)      // num_ref_idx_l1_default_active_minus1
	w.bit(0)     // weighted_pred_flag
	w.bits(0, 2) // weighted_bipred_idc
	w.ue(0)      // pic_init_qp_minus26 (se 0)
	w.ue(0)      // pic_init_qs_minus26 (se 0)
	w.ue(0)      // chroma_qp_index_offset (se 0)
	w.bit(1)     // deblocking_filter_control_present_flag
	w.bit(0)     // constrained_intra_pred_flag
	w.bit(0)     // redundant_pic_cnt_present_flag
	return append([]byte{0x68}, w.rbsp()...)
}
