// Package mediatest provides real encoded video for tests: short clips from
// libx264, libx265, libaom, SVT-AV1 and libvpx (see testdata/generate.sh),
// split into the frames an RTMP publisher sends, each with whether ffprobe
// flags it as a keyframe.
package mediatest

import (
	"embed"
	"encoding/binary"
	"fmt"
	"path"
	"strings"
)

//go:embed testdata/*.h264 testdata/*.hevc testdata/*.obu testdata/*.ivf testdata/*.keys
var files embed.FS

// Sample is one encoded clip.
type Sample struct {
	Name   string // file name under testdata
	FourCC string // Enhanced RTMP FourCC: "avc1", "hvc1", "av01" or "vp09"
	// Units holds each frame's NAL units (AVC, HEVC; without start codes or
	// lengths, parameter sets included) or OBUs (AV1; without the
	// temporal delimiter, with obu_has_size_field clear), in decode order.
	// VP9 frames have a single unit, the frame or superframe.
	Units [][][]byte
	// Key says which frames ffprobe flags as keyframes.
	Key []bool
	// VPS, SPS and PPS are the HEVC parameter sets (SPS and PPS for AVC).
	VPS, SPS, PPS []byte
}

// Frame returns frame i as an FLV video tag body carries it after its
// header: NAL units with 4-byte lengths, OBUs with their sizes, or the VP9
// frame.
func (s *Sample) Frame(i int) []byte {
	var b []byte
	for _, u := range s.Units[i] {
		switch s.FourCC {
		case "avc1", "hvc1":
			b = binary.BigEndian.AppendUint32(b, uint32(len(u)))
			b = append(b, u...)
		case "av01":
			b = append(b, u[0]|0x02) // obu_has_size_field
			n := 1
			if u[0]&0x04 != 0 {
				b = append(b, u[1])
				n++
			}
			b = appendLEB128(b, len(u)-n)
			b = append(b, u[n:]...)
		default:
			b = append(b, u...)
		}
	}
	return b
}

func appendLEB128(b []byte, v int) []byte {
	for {
		c := byte(v & 0x7F)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// Names lists the samples.
func Names() []string {
	entries, _ := files.ReadDir("testdata")
	var names []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".keys") {
			names = append(names, e.Name())
		}
	}
	return names
}

// Load reads and splits the named sample.
func Load(name string) (*Sample, error) {
	data, err := files.ReadFile(path.Join("testdata", name))
	if err != nil {
		return nil, err
	}
	keys, err := files.ReadFile(path.Join("testdata", name+".keys"))
	if err != nil {
		return nil, err
	}
	s := &Sample{Name: name}
	switch path.Ext(name) {
	case ".h264":
		s.FourCC = "avc1"
		err = s.splitAnnexB(data, func(nal []byte) int { return int(nal[0] & 0x1F) }, 9, 0, 7, 8)
	case ".hevc":
		s.FourCC = "hvc1"
		err = s.splitAnnexB(data, func(nal []byte) int { return int(nal[0]>>1) & 0x3F }, 35, 32, 33, 34)
	case ".obu":
		s.FourCC = "av01"
		err = s.splitOBUs(data)
	case ".ivf":
		s.FourCC = "vp09"
		err = s.splitIVF(data)
	default:
		err = fmt.Errorf("unknown file extension %q", path.Ext(name))
	}
	if err != nil {
		return nil, fmt.Errorf("mediatest: %s: %w", name, err)
	}
	for _, c := range strings.TrimSpace(string(keys)) {
		s.Key = append(s.Key, c == 'K')
	}
	if len(s.Key) != len(s.Units) {
		return nil, fmt.Errorf("mediatest: %s: %d frames, %d key flags", name, len(s.Units), len(s.Key))
	}
	return s, nil
}

// splitAnnexB splits an Annex B stream into access units at each access
// unit delimiter (NAL type aud), and keeps the parameter sets (types vps,
// sps, pps; vps 0 for AVC, which has none).
func (s *Sample) splitAnnexB(data []byte, nalType func([]byte) int, aud, vps, sps, pps int) error {
	for _, nal := range splitStartCodes(data) {
		switch t := nalType(nal); {
		case t == aud:
			s.Units = append(s.Units, nil)
		case len(s.Units) == 0:
			return fmt.Errorf("NAL unit type %d before the first access unit delimiter", t)
		case t == vps && vps != 0:
			s.VPS = nal
		case t == sps:
			s.SPS = nal
		case t == pps:
			s.PPS = nal
		}
		if len(s.Units) > 0 {
			last := len(s.Units) - 1
			s.Units[last] = append(s.Units[last], nal)
		}
	}
	return nil
}

// splitStartCodes returns the NAL units of an Annex B stream, without
// trailing zero bytes.
func splitStartCodes(data []byte) [][]byte {
	var nals [][]byte
	start := -1
	for i := 0; i+2 < len(data); i++ {
		if data[i] == 0 && data[i+1] == 0 && data[i+2] == 1 {
			if start >= 0 {
				nals = append(nals, trimZeros(data[start:i]))
			}
			start = i + 3
			i += 2
		}
	}
	if start >= 0 {
		nals = append(nals, trimZeros(data[start:]))
	}
	return nals
}

func trimZeros(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}

// splitOBUs splits a low-overhead OBU stream into temporal units at each
// temporal delimiter.
func (s *Sample) splitOBUs(data []byte) error {
	const temporalDelimiter = 2
	for len(data) > 0 {
		h := data[0]
		n := 1
		if h&0x04 != 0 {
			n++
		}
		if h&0x02 == 0 {
			return fmt.Errorf("OBU without size")
		}
		size, l := 0, 0
		for shift := 0; ; shift += 7 {
			if n+l >= len(data) {
				return fmt.Errorf("truncated OBU size")
			}
			c := data[n+l]
			size |= int(c&0x7F) << shift
			l++
			if c&0x80 == 0 {
				break
			}
		}
		if n+l+size > len(data) {
			return fmt.Errorf("truncated OBU")
		}
		obu := append([]byte{h &^ 0x02}, data[1:n]...)
		obu = append(obu, data[n+l:n+l+size]...)
		data = data[n+l+size:]
		if (h>>3)&0x0F == temporalDelimiter {
			s.Units = append(s.Units, nil)
			continue
		}
		if len(s.Units) == 0 {
			return fmt.Errorf("OBU before the first temporal delimiter")
		}
		last := len(s.Units) - 1
		s.Units[last] = append(s.Units[last], obu)
	}
	return nil
}

// splitIVF splits an IVF file into its frames.
func (s *Sample) splitIVF(data []byte) error {
	if len(data) < 32 || string(data[:4]) != "DKIF" {
		return fmt.Errorf("not an IVF file")
	}
	data = data[binary.LittleEndian.Uint16(data[6:]):]
	for len(data) > 0 {
		if len(data) < 12 {
			return fmt.Errorf("truncated IVF frame header")
		}
		n := int(binary.LittleEndian.Uint32(data))
		if 12+n > len(data) {
			return fmt.Errorf("truncated IVF frame")
		}
		s.Units = append(s.Units, [][]byte{data[12 : 12+n]})
		data = data[12+n:]
	}
	return nil
}
