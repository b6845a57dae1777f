package handshake

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

// C2Form says how a client's C2 related to the server's S1.
type C2Form uint8

const (
	// C2Mismatch: C2 was neither of the forms below. Server accepts it.
	C2Mismatch C2Form = iota
	// C2Echo: C2 repeated S1 from byte 8 on, as the simple form asks (the
	// time fields may differ). ffmpeg publishing sends this even after a
	// digest-form S1.
	C2Echo
	// C2Digest: C2 ended with a signature keyed with the server's S1 digest,
	// as the digest form asks.
	C2Digest
)

func (f C2Form) String() string {
	switch f {
	case C2Mismatch:
		return "mismatch"
	case C2Echo:
		return "echo"
	case C2Digest:
		return "digest"
	}
	return fmt.Sprintf("C2Form(%d)", uint8(f))
}

// Info describes a handshake that Server completed, for debug logs.
type Info struct {
	// Digest reports that C1 carried a valid digest, so S1 and S2 were sent
	// in the digest form; false means the simple form.
	Digest bool
	// Scheme is the digest scheme of C1 (0 or 1) when Digest is set.
	Scheme int
	// ClientVersion is bytes 4..7 of C1: the player version the client
	// claims, such as 0x09007c02 (9.0.124.2) from ffmpeg; zero from a client
	// that knows only the simple form.
	ClientVersion uint32
	// ClientTime is bytes 0..3 of C1, the client's own time base.
	ClientTime uint32
	// C2 says how C2 related to S1. A mismatch is not an error.
	C2 C2Form
}

// Server runs the server side of the handshake over rw: it reads C0 and C1,
// writes S0, S1 and S2 in one Write, and reads C2.
//
// It reads exactly 1+2*Size bytes from rw and never more, so rw's reader may
// be the buffered reader that the caller goes on reading chunks from. It sets
// no deadlines; the caller sets them on the connection. A C0 other than
// Version gives ErrVersion at once, before C1 is read. A stream that ends
// early gives an error wrapping io.ErrUnexpectedEOF, or io.EOF when the peer
// sent nothing at all.
func Server(rw io.ReadWriter, cfg *Config) error {
	_, err := ServerWithInfo(rw, cfg)
	return err
}

// serverBuffers are the buffers of one server handshake, reused through
// serverBufferPool: a burst of connections then costs no garbage for them.
// Every byte is overwritten (read in full, or filled) before it is used.
type serverBuffers struct {
	c1, c2 [Size]byte
	out    [responseSize]byte
}

var serverBufferPool = sync.Pool{New: func() any { return new(serverBuffers) }}

// ServerWithInfo is Server, and also reports which form the handshake took.
// On error the Info holds what was learnt before the error.
func ServerWithInfo(rw io.ReadWriter, cfg *Config) (Info, error) {
	var info Info
	var c0 [1]byte
	if err := readFull(rw, c0[:], "C0", true); err != nil {
		return info, err
	}
	if c0[0] != Version {
		return info, fmt.Errorf("%w: C0 is %d", ErrVersion, c0[0])
	}
	bufs := serverBufferPool.Get().(*serverBuffers)
	defer serverBufferPool.Put(bufs)
	c1 := bufs.c1[:]
	if err := readFull(rw, c1, "C1", false); err != nil {
		return info, err
	}
	info.ClientTime = binary.BigEndian.Uint32(c1[0:4])
	info.ClientVersion = binary.BigEndian.Uint32(c1[4:8])

	out := bufs.out[:]
	out[0] = Version
	s1, s2 := out[1:1+Size], out[1+Size:]
	var s1DigestPos int
	if info.ClientVersion != 0 {
		scheme, pos, ok := findDigest(c1, clientKey[:clientKeyTextSize], 0)
		if ok {
			info.Digest, info.Scheme = true, scheme
			var err error
			s1DigestPos, err = digestResponse(s1, s2, c1[pos:pos+digestSize], scheme, cfg)
			if err != nil {
				return info, err
			}
		}
	}
	if !info.Digest {
		cfg.putHeader(s1, 0)
		if err := cfg.fillRandom(s1[headerSize:]); err != nil {
			return info, err
		}
		copy(s2, c1)
	}
	if _, err := rw.Write(out); err != nil {
		return info, fmt.Errorf("handshake: writing S0+S1+S2: %w", err)
	}

	c2 := bufs.c2[:]
	if err := readFull(rw, c2, "C2", false); err != nil {
		return info, err
	}
	switch {
	case bytes.Equal(c2[headerSize:], s1[headerSize:]):
		info.C2 = C2Echo
	case info.Digest && isSigned(c2, signingKey(clientKey, s1[s1DigestPos:s1DigestPos+digestSize])):
		info.C2 = C2Digest
	}
	return info, nil
}

// digestResponse fills the digest forms of S1 and S2 in answer to a C1 whose
// digest under scheme is clientDigest. It returns the position of the
// digest in S1.
func digestResponse(s1, s2, clientDigest []byte, scheme int, cfg *Config) (int, error) {
	cfg.putHeader(s1, serverVersion)
	if err := cfg.fillRandom(s1[headerSize:]); err != nil {
		return 0, err
	}
	pos := putDigest(s1, scheme, serverKey[:serverKeyTextSize])

	if err := cfg.fillRandom(s2[:signedSize]); err != nil {
		return 0, err
	}
	copy(s2[signedSize:], signature(s2, signingKey(serverKey, clientDigest)))
	return pos, nil
}
