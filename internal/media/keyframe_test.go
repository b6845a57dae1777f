package media

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/rtmp-server/rtmp-server/internal/media/mediatest"
)

func loadSamples(t testing.TB) []*mediatest.Sample {
	t.Helper()
	var samples []*mediatest.Sample
	for _, name := range mediatest.Names() {
		s, err := mediatest.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		samples = append(samples, s)
	}
	if len(samples) < 6 {
		t.Fatalf("%d samples, want at least 6", len(samples))
	}
	return samples
}

// exPayload builds an Enhanced RTMP video tag body for frame with the given
// frame type and packet type (CodedFrames gets a composition time offset
// for AVC and HEVC).
func exPayload(frameType, packetType byte, fourCC string, frame []byte) []byte {
	p := append([]byte{0x80 | frameType<<4 | packetType}, fourCC...)
	if packetType == exVideoCodedFrames && (fourCC == "avc1" || fourCC == "hvc1") {
		p = append(p, 0x00, 0x00, 0x50)
	}
	return append(p, frame...)
}

// TestRandomAccessSamples classifies every frame of real encoder output
// and compares with what ffprobe says, directly and through Video with the
// frame types real publishers send.
func TestRandomAccessSamples(t *testing.T) {
	for _, s := range loadSamples(t) {
		t.Run(s.Name, func(t *testing.T) {
			keys := 0
			for i := range s.Units {
				frame := s.Frame(i)
				want, wantKind := s.Key[i], Frame
				if want {
					keys++
					wantKind = Keyframe
				}
				if got := RandomAccess(s.FourCC, frame); got != want {
					t.Errorf("frame %d: RandomAccess = %v, want %v", i, got, want)
				}
				// Frame type 0, as gortmplib 1.0 sends it.
				for _, pt := range []byte{exVideoCodedFrames, exVideoCodedFramesX} {
					if got := Video(exPayload(0, pt, s.FourCC, frame)); got != wantKind {
						t.Errorf("frame %d, packet type %d, frame type 0: %v, want %v", i, pt, got, wantKind)
					}
				}
				// A frame type that is set is trusted.
				if got := Video(exPayload(frameTypeKey, exVideoCodedFramesX, s.FourCC, frame)); got != Keyframe {
					t.Errorf("frame %d, frame type 1: %v", i, got)
				}
				if got := Video(exPayload(frameTypeInter, exVideoCodedFramesX, s.FourCC, frame)); got != Frame {
					t.Errorf("frame %d, frame type 2: %v", i, got)
				}
				// Classic AVC and FLV HEVC with frame type 0.
				codec := map[string]byte{"avc1": videoCodecAVC, "hvc1": videoCodecHEVCFLV}[s.FourCC]
				if codec != 0 {
					p := append([]byte{codec, avcPacketNALU, 0, 0, 0}, frame...)
					if got := Video(p); got != wantKind {
						t.Errorf("frame %d, classic, frame type 0: %v, want %v", i, got, wantKind)
					}
				}
			}
			if keys < 2 || keys == len(s.Units) {
				t.Fatalf("%d keyframes among %d frames: the sample does not test both kinds", keys, len(s.Units))
			}
		})
	}
}

// lengthPrefixed encodes NAL units with lengthSize-byte lengths, or
// reports false when one is too long for it.
func lengthPrefixed(nals [][]byte, lengthSize int) ([]byte, bool) {
	var b []byte
	for _, nal := range nals {
		if len(nal) >= 1<<(8*lengthSize) {
			return nil, false
		}
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(nal)))
		b = append(b, l[4-lengthSize:]...)
		b = append(b, nal...)
	}
	return b, true
}

// TestNALFramings reads the AVC and HEVC samples with every NAL unit length
// size a decoder configuration record allows, and as Annex B.
func TestNALFramings(t *testing.T) {
	for _, s := range loadSamples(t) {
		if s.FourCC != "avc1" && s.FourCC != "hvc1" {
			continue
		}
		tested := map[string]int{}
		for i, nals := range s.Units {
			for _, size := range []int{2, 1} {
				name := fmt.Sprintf("%d-byte lengths", size)
				if b, ok := lengthPrefixed(nals, size); ok {
					tested[name]++
					if got := RandomAccess(s.FourCC, b); got != s.Key[i] {
						t.Errorf("%s frame %d, %s: %v, want %v", s.Name, i, name, got, s.Key[i])
					}
				}
			}
			for _, sc := range [][]byte{{0, 0, 1}, {0, 0, 0, 1}} {
				var b []byte
				for _, nal := range nals {
					b = append(append(b, sc...), nal...)
				}
				tested["annex b"]++
				if got := RandomAccess(s.FourCC, b); got != s.Key[i] {
					t.Errorf("%s frame %d, Annex B with % x: %v, want %v", s.Name, i, sc, got, s.Key[i])
				}
			}
		}
		if tested["2-byte lengths"] != len(s.Units) || tested["1-byte lengths"] == 0 {
			t.Errorf("%s: framings tested %v", s.Name, tested)
		}
	}
}

func TestRandomAccess(t *testing.T) {
	hevcNAL := func(typ, layer, tid byte) []byte {
		return []byte{typ<<1 | layer>>5, layer<<3 | tid, 0xAF, 0x01}
	}
	nals := func(units ...[]byte) []byte {
		b, _ := lengthPrefixed(units, 4)
		return b
	}
	tests := []struct {
		name   string
		fourCC string
		input  []byte
		want   bool
	}{
		{"unknown codec", "vp08", []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a}, false},
		{"empty hevc", "hvc1", nil, false},
		{"hevc idr", "hvc1", nals(hevcNAL(19, 0, 1)), true},
		{"hevc cra after sei", "hvc1", nals(hevcNAL(35, 0, 1), hevcNAL(39, 0, 1), hevcNAL(21, 0, 1)), true},
		{"hevc bla", "hvc1", nals(hevcNAL(16, 0, 1)), true},
		{"hevc trail", "hvc1", nals(hevcNAL(1, 0, 1)), false},
		{"hevc rasl", "hvc1", nals(hevcNAL(8, 0, 1)), false},
		{"hevc parameter sets only", "hvc1", nals(hevcNAL(32, 0, 1), hevcNAL(33, 0, 1), hevcNAL(34, 0, 1)), false},
		{"hevc trail then idr", "hvc1", nals(hevcNAL(1, 0, 1), hevcNAL(19, 0, 1)), false},
		{"hevc enhancement layer idr first", "hvc1", nals(hevcNAL(19, 1, 1), hevcNAL(1, 0, 1)), false},
		{"hevc temporal id 0 is malformed", "hvc1", nals(hevcNAL(19, 0, 0)), false},
		{"hevc forbidden bit", "hvc1", nals([]byte{0x80 | 19<<1, 0x01}), false},
		{"hevc length past the end", "hvc1", []byte{0, 0, 0, 9, 19 << 1, 0x01}, false},
		{"hevc trailing byte", "hvc1", append(nals(hevcNAL(19, 0, 1)), 0), false},
		{"hevc one-byte nal", "hvc1", []byte{0, 0, 0, 1, 19 << 1}, false},
		{"hevc annex b idr", "hvc1", append([]byte{0, 0, 0, 1}, hevcNAL(19, 0, 1)...), true},
		{"avc idr", "avc1", nals([]byte{0x09, 0xF0}, []byte{0x06, 0x05}, []byte{0x65, 0x88}), true},
		{"avc non-idr", "avc1", nals([]byte{0x41, 0x9A}), false},
		{"avc sei only", "avc1", nals([]byte{0x06, 0x05}), false},
		{"av1 key frame", "av01", []byte{0x32, 0x01, 0x10}, true},                   // OBU_FRAME, shown key frame
		{"av1 frame header key", "av01", []byte{0x1A, 0x01, 0x10}, true},            // OBU_FRAME_HEADER
		{"av1 hidden key frame", "av01", []byte{0x32, 0x01, 0x00}, false},           // show_frame 0
		{"av1 inter frame", "av01", []byte{0x32, 0x01, 0x30}, false},                // frame_type INTER
		{"av1 intra-only frame", "av01", []byte{0x32, 0x01, 0x50}, false},           // frame_type INTRA_ONLY
		{"av1 show existing key", "av01", []byte{0x1A, 0x01, 0x80}, false},          // show_existing_frame
		{"av1 after delimiter", "av01", []byte{0x12, 0x00, 0x32, 0x01, 0x10}, true}, // temporal delimiter first
		{"av1 without sizes", "av01", []byte{0x30, 0x10, 0xFF}, true},               // last OBU runs to the end
		{"av1 with extension", "av01", []byte{0x36, 0x08, 0x01, 0x10}, true},        // temporal_id 0, spatial_id 1
		{"av1 two-byte size", "av01", append([]byte{0x32, 0x81, 0x01, 0x10}, make([]byte, 128)...), true},
		{"av1 size past the end", "av01", []byte{0x32, 0x05, 0x10}, false},
		{"av1 truncated size", "av01", []byte{0x32, 0x81}, false},
		{"av1 empty frame", "av01", []byte{0x32, 0x00}, false},
		{"av1 forbidden bit", "av01", []byte{0xB2, 0x01, 0x10}, false},
		{"av1 metadata only", "av01", []byte{0x2A, 0x01, 0x00}, false},
		{"av1 reduced still picture", "av01", []byte{0x0A, 0x01, 0x18, 0x32, 0x01, 0xFF}, true}, // sequence header with reduced_still_picture_header
		{"av1 not reduced", "av01", []byte{0x0A, 0x01, 0x10, 0x32, 0x01, 0xFF}, false},          // still_picture only: header read
		{"av1 empty sequence header", "av01", []byte{0x0A, 0x00, 0x32, 0x01, 0x10}, false},
		{"av1 overlong leb128", "av01", []byte{0x32, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x10}, false},
		{"vp9 key frame", "vp09", []byte{0x82, 0x49, 0x83, 0x42, 0x00}, true},
		{"vp9 profile 1 key frame", "vp09", []byte{0xA2, 0x49, 0x83, 0x42, 0x00}, true},
		{"vp9 profile 3 key frame", "vp09", []byte{0xB1, 0x24, 0xC1, 0xA1, 0x00}, true},
		{"vp9 profile 3 reserved bit", "vp09", []byte{0xB9, 0x24, 0xC1, 0xA1, 0x00}, false},
		{"vp9 inter frame", "vp09", []byte{0x86, 0x00, 0x00}, false},
		{"vp9 show existing", "vp09", []byte{0x88}, false},
		{"vp9 bad sync code", "vp09", []byte{0x82, 0x49, 0x83, 0x43, 0x00}, false},
		{"vp9 bad frame marker", "vp09", []byte{0x42, 0x49, 0x83, 0x42, 0x00}, false},
		{"vp9 truncated sync code", "vp09", []byte{0x82, 0x49, 0x83}, false},
		{"vp9 empty", "vp09", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RandomAccess(tt.fourCC, tt.input); got != tt.want {
				t.Fatalf("RandomAccess(%q, % x) = %v, want %v", tt.fourCC, tt.input, got, tt.want)
			}
		})
	}
}

// TestVideoBitstreamKeyframes checks which packets Video reads the
// bitstream of.
func TestVideoBitstreamKeyframes(t *testing.T) {
	idr := []byte{0, 0, 0, 2, 0x65, 0x88}
	hevcIDR := []byte{0, 0, 0, 3, 19 << 1, 0x01, 0xAF}
	tests := []struct {
		name  string
		input []byte
		want  Kind
	}{
		{"hevc frame type 0 idr", append([]byte{0x81}, append([]byte("hvc1\x00\x00\x00"), hevcIDR...)...), Keyframe},
		{"hevc frame type 0 X idr", append([]byte{0x83}, append([]byte("hvc1"), hevcIDR...)...), Keyframe},
		{"hevc frame type 0 short", append([]byte{0x81}, "hvc1\x00"...), Frame},
		{"hevc frame type 2 idr", append([]byte{0xA3}, append([]byte("hvc1"), hevcIDR...)...), Frame},
		{"hevc frame type 3 idr", append([]byte{0xB3}, append([]byte("hvc1"), hevcIDR...)...), Keyframe},
		{"av1 frame type 0 key", append([]byte{0x81}, "av01\x32\x01\x10"...), Keyframe},
		{"vp9 frame type 0 key", append([]byte{0x83}, "vp09\x82\x49\x83\x42\x00"...), Keyframe},
		{"vp9 frame type 0 inter", append([]byte{0x83}, "vp09\x86\x00\x00"...), Frame},
		{"metadata not read", append([]byte{0x84}, "vp09\x82\x49\x83\x42\x00"...), Info},
		{"sequence start", append([]byte{0x80}, "vp09\x82\x49\x83\x42\x00"...), SequenceHeader},
		{"classic avc frame type 0 idr", append([]byte{0x07, 0x01, 0, 0, 0}, idr...), Keyframe},
		{"classic avc frame type 2 idr", append([]byte{0x27, 0x01, 0, 0, 0}, idr...), Frame},
		{"classic avc frame type 0 truncated", []byte{0x07, 0x01, 0, 0}, Frame},
		{"classic hevc frame type 0 idr", append([]byte{0x0C, 0x01, 0, 0, 0}, hevcIDR...), Keyframe},
		{"classic vp6 frame type 0", append([]byte{0x04, 0x01, 0, 0, 0}, idr...), Frame},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Video(tt.input); got != tt.want {
				t.Fatalf("Video(% x) = %v, want %v", tt.input, got, tt.want)
			}
		})
	}
}

// Reference checks for the fuzz targets, written independently of the
// implementation: field by field with a bit reader where it uses masks, and
// the other way round.

// refNALRandomAccess splits au with 4-byte lengths into NAL units first and
// then looks at them; ok is false when au is not such a list of well-formed
// NAL units.
func refNALRandomAccess(au []byte, hevc bool) (ra, ok bool) {
	var units [][]byte
	r := bytes.NewReader(au)
	for r.Len() > 0 {
		var n uint32
		if binary.Read(r, binary.BigEndian, &n) != nil || int64(n) > int64(r.Len()) {
			return false, false
		}
		u := make([]byte, n)
		r.Read(u)
		units = append(units, u)
	}
	if len(units) == 0 {
		return false, false
	}
	firstType := -1
	for _, u := range units {
		br := bitReader{buf: u}
		if br.read(1) != 0 { // forbidden_zero_bit
			return false, false
		}
		if hevc {
			typ, layer, tid := br.read(6), br.read(6), br.read(3)
			if br.short || tid == 0 {
				return false, false
			}
			if firstType < 0 && typ < 32 && layer == 0 {
				firstType = int(typ)
			}
		} else {
			br.read(2) // nal_ref_idc
			typ := br.read(5)
			if br.short {
				return false, false
			}
			if firstType < 0 && typ >= 1 && typ <= 5 {
				firstType = int(typ)
			}
		}
	}
	if hevc {
		return firstType >= 16 && firstType <= 23, true
	}
	return firstType == 5, true
}

// refAV1RandomAccess parses every OBU header with a bit reader before
// deciding; ok is false when tu is malformed before its first frame header.
func refAV1RandomAccess(tu []byte) (ra, ok bool) {
	type obu struct {
		typ     uint32
		payload []byte
	}
	var obus []obu
	for len(tu) > 0 {
		r := bitReader{buf: tu}
		forbidden, typ, ext, hasSize := r.read(1), r.read(4), r.read(1), r.read(1)
		r.read(1) // obu_reserved_1bit
		if ext == 1 {
			r.read(8) // temporal_id, spatial_id, reserved
		}
		if r.short || forbidden != 0 {
			break
		}
		size := uint64(len(tu) - r.pos/8)
		if hasSize == 1 {
			size = 0
			i := 0
			for ; i < 8; i++ {
				b := uint64(r.read(8))
				size |= (b & 0x7F) << (7 * i)
				if b&0x80 == 0 {
					break
				}
			}
			if r.short || i == 8 || size > 0xFFFFFFFF {
				break
			}
		}
		start := r.pos / 8
		if size > uint64(len(tu)-start) {
			break
		}
		obus = append(obus, obu{typ, tu[start : start+int(size)]})
		tu = tu[start+int(size):]
	}
	reduced := false
	for _, o := range obus {
		r := bitReader{buf: o.payload}
		switch o.typ {
		case 1:
			r.read(4) // seq_profile, still_picture
			reduced = r.read(1) == 1
			if r.short {
				return false, false
			}
		case 3, 6:
			if reduced {
				return true, true
			}
			showExisting, frameType, showFrame := r.read(1), r.read(2), r.read(1)
			return !r.short && showExisting == 0 && frameType == 0 && showFrame == 1, true
		}
	}
	return false, false
}

// refVP9RandomAccess reads the header with byte masks: the fields sit one
// bit later in profile 3.
func refVP9RandomAccess(f []byte) bool {
	if len(f) < 4 || f[0]>>6 != 2 {
		return false
	}
	profile := (f[0]>>5)&1 | (f[0]>>4)&1<<1
	if profile != 3 {
		return f[0]&0x0C == 0 && f[1] == 0x49 && f[2] == 0x83 && f[3] == 0x42
	}
	if len(f) < 5 || f[0]&0x0E != 0 { // reserved_zero, show_existing_frame, frame_type
		return false
	}
	sync := (uint32(f[1])<<17 | uint32(f[2])<<9 | uint32(f[3])<<1 | uint32(f[4])>>7) & 0xFFFFFF
	return sync == vp9SyncCode
}

func addSampleSeeds(f *testing.F, fourCC string) {
	for _, s := range loadSamples(f) {
		if s.FourCC != fourCC {
			continue
		}
		for i := range s.Units {
			f.Add(s.Frame(i))
		}
	}
}

func fuzzNAL(f *testing.F, fourCC string) {
	addSampleSeeds(f, fourCC)
	f.Fuzz(func(t *testing.T, au []byte) {
		got := RandomAccess(fourCC, au)
		if want, ok := refNALRandomAccess(au, fourCC == "hvc1"); ok && got != want {
			t.Fatalf("RandomAccess = %v, reference = %v", got, want)
		}
		// Re-framed with 2-byte lengths the same NAL units give the same
		// answer, unless the 2-byte framing happens to read as 4-byte one.
		if _, ok := refNALRandomAccess(au, fourCC == "hvc1"); ok {
			var units [][]byte
			for rest := au; len(rest) > 0; {
				n := binary.BigEndian.Uint32(rest)
				units = append(units, rest[4:4+n])
				rest = rest[4+n:]
			}
			if b, ok := lengthPrefixed(units, 2); ok {
				if _, as4 := refNALRandomAccess(b, fourCC == "hvc1"); !as4 && RandomAccess(fourCC, b) != got {
					t.Fatalf("2-byte lengths: %v, 4-byte lengths: %v", !got, got)
				}
			}
		}
	})
}

func FuzzAVCRandomAccess(f *testing.F)  { fuzzNAL(f, "avc1") }
func FuzzHEVCRandomAccess(f *testing.F) { fuzzNAL(f, "hvc1") }

func FuzzAV1RandomAccess(f *testing.F) {
	addSampleSeeds(f, "av01")
	f.Fuzz(func(t *testing.T, tu []byte) {
		got := av1RandomAccess(tu)
		if want, ok := refAV1RandomAccess(tu); ok && got != want {
			t.Fatalf("av1RandomAccess = %v, reference = %v", got, want)
		} else if !ok && got {
			t.Fatalf("av1RandomAccess = true for a temporal unit the reference finds malformed")
		}
		// The answer comes from the first frame header: what follows a
		// temporal unit that has one does not change it.
		if got && !av1RandomAccess(append(tu[:len(tu):len(tu)], 0xFF, 0x80, 0x32)) {
			t.Fatalf("trailing bytes changed the answer")
		}
	})
}

func FuzzVP9RandomAccess(f *testing.F) {
	addSampleSeeds(f, "vp09")
	f.Fuzz(func(t *testing.T, frame []byte) {
		got := vp9RandomAccess(frame)
		if want := refVP9RandomAccess(frame); got != want {
			t.Fatalf("vp9RandomAccess = %v, reference = %v", got, want)
		}
		// Only the first five bytes count.
		if len(frame) >= 5 && vp9RandomAccess(append(frame[:5:5], 0xFF)) != got {
			t.Fatalf("bytes after the header changed the answer")
		}
	})
}
