package media

// Keyframes recognised from the coded bitstream, for video messages whose
// frame type does not say: gortmplib 1.0 flags every Enhanced RTMP HEVC,
// AV1 and VP9 frame with the reserved frame type 0, and some encoders send
// classic AVC with frame types they should not. Only the first bytes of a
// picture are read (NAL unit headers, OBU headers, the start of an
// uncompressed frame header); nothing is decoded and nothing is allocated.

// RandomAccess reports whether frame, the coded data of one video message
// in the codec named by an Enhanced RTMP FourCC, is a picture a decoder can
// start from once it has the sequence header:
//
//   - "avc1": an access unit whose first VCL NAL unit is an IDR slice;
//   - "hvc1": an access unit whose first VCL NAL unit is an IRAP picture
//     (BLA, IDR or CRA, NAL unit types 16 to 23);
//   - "av01": a temporal unit whose first frame header is a shown key frame
//     (every frame of a reduced still picture header sequence is one);
//   - "vp09": a frame (or the first frame of a superframe) whose
//     uncompressed header says key frame.
//
// AVC and HEVC access units are NAL units with length fields as the
// decoder configuration record describes them. The record's length size is
// not known here, so each size the record allows (4 bytes, which encoders
// use almost always, then 2 and 1) is tried and the first one whose lengths
// tile the data exactly and whose NAL unit headers are well formed is
// used; Annex B start codes, which some encoders send by mistake, are
// accepted as a last resort. Unknown codecs and malformed data report false.
func RandomAccess(fourCC string, frame []byte) bool {
	switch fourCC {
	case "avc1":
		return nalRandomAccess(frame, avcSyntax)
	case "hvc1":
		return nalRandomAccess(frame, hevcSyntax)
	case "av01":
		return av1RandomAccess(frame)
	case "vp09":
		return vp9RandomAccess(frame)
	}
	return false
}

// nalSyntax is what the NAL unit scan needs to know of a codec's NAL unit
// header.
type nalSyntax struct {
	headerLen int
	// valid reports whether a header is well formed.
	valid func(h []byte) bool
	// vcl reports whether the NAL unit carries (base layer) picture data.
	vcl func(h []byte) bool
	// randomAccess reports whether a VCL NAL unit starts a picture a
	// decoder can begin with.
	randomAccess func(h []byte) bool
}

const (
	avcNALTypeIDR      = 5
	hevcNALTypeIRAPMin = 16 // BLA_W_LP
	hevcNALTypeIRAPMax = 23 // RSV_IRAP_VCL23
	hevcNALTypeVCLMax  = 31
)

var avcSyntax = nalSyntax{
	headerLen: 1,
	// forbidden_zero_bit
	valid: func(h []byte) bool { return h[0]&0x80 == 0 },
	// nal_unit_type 1 to 5: coded slices
	vcl:          func(h []byte) bool { t := h[0] & 0x1F; return t >= 1 && t <= avcNALTypeIDR },
	randomAccess: func(h []byte) bool { return h[0]&0x1F == avcNALTypeIDR },
}

var hevcSyntax = nalSyntax{
	headerLen: 2,
	// forbidden_zero_bit, and nuh_temporal_id_plus1 is never 0
	valid: func(h []byte) bool { return h[0]&0x80 == 0 && h[1]&0x07 != 0 },
	// nal_unit_type below 32 in the base layer (nuh_layer_id 0)
	vcl: func(h []byte) bool {
		return hevcNALType(h) <= hevcNALTypeVCLMax && h[0]&0x01 == 0 && h[1]&0xF8 == 0
	},
	randomAccess: func(h []byte) bool {
		t := hevcNALType(h)
		return t >= hevcNALTypeIRAPMin && t <= hevcNALTypeIRAPMax
	},
}

func hevcNALType(h []byte) byte { return (h[0] >> 1) & 0x3F }

// nalLengthSizes are the NAL unit length field sizes the AVC and HEVC
// decoder configuration records allow (lengthSizeMinusOne 3, 1 and 0), the
// usual one first.
var nalLengthSizes = [...]int{4, 2, 1}

// nalRandomAccess reports whether the first VCL NAL unit of the access unit
// au is a random-access picture, reading au with the first framing that
// fits it (see RandomAccess).
func nalRandomAccess(au []byte, syn nalSyntax) bool {
	for _, size := range nalLengthSizes {
		if first, ok := firstVCLPrefixed(au, size, syn); ok {
			return first != nil && syn.randomAccess(first)
		}
	}
	if first, ok := firstVCLAnnexB(au, syn); ok {
		return first != nil && syn.randomAccess(first)
	}
	return false
}

// firstVCLPrefixed walks au as NAL units each preceded by a big-endian
// length of lengthSize bytes. It reports ok only if the lengths tile au
// exactly and every NAL unit has a well-formed header, and then returns the
// header of the first VCL NAL unit, or nil if there is none.
func firstVCLPrefixed(au []byte, lengthSize int, syn nalSyntax) (first []byte, ok bool) {
	if len(au) == 0 {
		return nil, false
	}
	for len(au) > 0 {
		if len(au) < lengthSize {
			return nil, false
		}
		n := 0
		for _, b := range au[:lengthSize] {
			n = n<<8 | int(b)
		}
		au = au[lengthSize:]
		if n < syn.headerLen || n > len(au) {
			return nil, false
		}
		h := au[:syn.headerLen]
		if !syn.valid(h) {
			return nil, false
		}
		if first == nil && syn.vcl(h) {
			first = h
		}
		au = au[n:]
	}
	return first, true
}

// firstVCLAnnexB walks au as an Annex B byte stream (NAL units after
// 00 00 01 start codes) up to its first VCL NAL unit. It reports ok only if
// au starts with a start code and the NAL units it walks have well-formed
// headers, and then returns the header of the first VCL NAL unit, or nil if
// there is none.
func firstVCLAnnexB(au []byte, syn nalSyntax) (first []byte, ok bool) {
	start := annexBStart(au, 0)
	if start != 3 && start != 4 {
		return nil, false
	}
	for start >= 0 {
		if len(au)-start < syn.headerLen || !syn.valid(au[start:]) {
			return nil, false
		}
		if syn.vcl(au[start:]) {
			return au[start : start+syn.headerLen], true
		}
		next := annexBStart(au, start)
		if next >= 0 && next-3-start < syn.headerLen {
			return nil, false
		}
		start = next
	}
	return nil, true
}

// annexBStart returns the index just after the first 00 00 01 start code
// at or after from, or -1.
func annexBStart(b []byte, from int) int {
	zeros := 0
	for i := from; i < len(b); i++ {
		switch {
		case b[i] == 0:
			zeros++
		case b[i] == 1 && zeros >= 2:
			return i + 1
		default:
			zeros = 0
		}
	}
	return -1
}

// AV1 OBU types (AV1 specification, section 6.2.2).
const (
	av1OBUSequenceHeader = 1
	av1OBUFrameHeader    = 3
	av1OBUFrame          = 6
	av1KeyFrame          = 0 // frame_type
)

// av1RandomAccess reports whether the temporal unit tu (OBUs in the
// low-overhead format, as Enhanced RTMP and ISOBMFF carry them) starts with
// a shown key frame. The first frame header decides: frame_type KEY_FRAME
// with show_frame set, and show_existing_frame clear (a key frame shown
// again from an earlier temporal unit needs that unit). A sequence header
// in the same temporal unit is read for reduced_still_picture_header, which
// makes every frame a key frame; without one the flag is taken as clear,
// as it is in every video (as opposed to still image) stream.
func av1RandomAccess(tu []byte) bool {
	reducedStill := false
	for len(tu) > 0 {
		h := tu[0]
		if h&0x80 != 0 { // obu_forbidden_bit
			return false
		}
		typ := (h >> 3) & 0x0F
		n := 1
		if h&0x04 != 0 { // obu_extension_flag
			n++
		}
		if len(tu) < n {
			return false
		}
		size := len(tu) - n // without obu_has_size_field, the OBU runs to the end
		if h&0x02 != 0 {
			v, l := leb128(tu[n:])
			if l == 0 || v > uint64(len(tu)-n-l) {
				return false
			}
			n += l
			size = int(v)
		}
		payload := tu[n : n+size]
		tu = tu[n+size:]
		switch typ {
		case av1OBUSequenceHeader:
			if len(payload) == 0 {
				return false
			}
			// seq_profile f(3), still_picture f(1), reduced_still_picture_header f(1)
			reducedStill = payload[0]&0x08 != 0
		case av1OBUFrameHeader, av1OBUFrame:
			if reducedStill {
				return true
			}
			if len(payload) == 0 {
				return false
			}
			// show_existing_frame f(1), frame_type f(2), show_frame f(1)
			b := payload[0]
			return b&0x80 == 0 && (b>>5)&0x03 == av1KeyFrame && b&0x10 != 0
		}
	}
	return false
}

// leb128 decodes an unsigned LEB128 value of at most 8 bytes (AV1
// specification, section 4.10.5) and returns it with its length, or a
// length of 0 if b ends first or the value exceeds 2^32-1.
func leb128(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < 8 && i < len(b); i++ {
		v |= uint64(b[i]&0x7F) << (7 * i)
		if b[i]&0x80 == 0 {
			if v > 1<<32-1 {
				return 0, 0
			}
			return v, i + 1
		}
	}
	return 0, 0
}

// vp9SyncCode starts the header of every VP9 key frame.
const vp9SyncCode = 0x498342

// vp9RandomAccess reports whether frame (a VP9 frame or superframe, whose
// first frame starts at offset 0) begins with a key frame: frame_marker 2,
// the profile, show_existing_frame clear, frame_type KEY_FRAME and the
// frame sync code (VP9 bitstream specification, section 6.2).
func vp9RandomAccess(frame []byte) bool {
	r := bitReader{buf: frame}
	if r.read(2) != 2 { // frame_marker
		return false
	}
	profile := r.read(1) | r.read(1)<<1 // profile_low_bit, profile_high_bit
	if profile == 3 && r.read(1) != 0 { // reserved_zero
		return false
	}
	if r.read(1) != 0 { // show_existing_frame
		return false
	}
	if r.read(1) != 0 { // frame_type: 0 is KEY_FRAME
		return false
	}
	r.read(2) // show_frame, error_resilient_mode
	return r.read(24) == vp9SyncCode && !r.short
}

// bitReader reads big-endian bit fields; past the end it reads zeros and
// sets short.
type bitReader struct {
	buf   []byte
	pos   int // in bits
	short bool
}

func (r *bitReader) read(n int) uint32 {
	var v uint32
	for range n {
		bit := uint32(0)
		if i := r.pos / 8; i < len(r.buf) {
			bit = uint32(r.buf[i]>>(7-r.pos%8)) & 1
		} else {
			r.short = true
		}
		v = v<<1 | bit
		r.pos++
	}
	return v
}
