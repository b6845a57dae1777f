package handshake

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// clientScheme is the digest scheme Client uses in C1, the one ffmpeg and
// librtmp use for unencrypted RTMP.
const clientScheme = 0

// Client runs the client side of the handshake over rw: it writes C0 and C1
// in the digest form, reads S0, S1 and S2, and writes C2.
//
// When S1 claims the digest form (non-zero bytes 4..7) its digest must
// validate under either scheme, and S2 must be signed for C1's digest or
// echo C1, or Client returns ErrDigest; C2 is then signed for S1's digest.
// Otherwise the server used the simple form and C2 echoes S1. Client reads
// exactly 1+2*Size bytes and never more. An S0 other than Version gives
// ErrVersion; a stream that ends early gives an error wrapping
// io.ErrUnexpectedEOF.
func Client(rw io.ReadWriter, cfg *Config) error {
	out := make([]byte, 1+Size)
	out[0] = Version
	c1 := out[1:]
	cfg.putHeader(c1, clientVersion)
	if err := cfg.fillRandom(c1[headerSize:]); err != nil {
		return err
	}
	pos := putDigest(c1, clientScheme, clientKey[:clientKeyTextSize])
	clientDigest := c1[pos : pos+digestSize]
	if _, err := rw.Write(out); err != nil {
		return fmt.Errorf("handshake: writing C0+C1: %w", err)
	}

	in := make([]byte, responseSize)
	if err := readFull(rw, in[:1], "S0", false); err != nil {
		return err
	}
	if in[0] != Version {
		return fmt.Errorf("%w: S0 is %d", ErrVersion, in[0])
	}
	if err := readFull(rw, in[1:], "S1+S2", false); err != nil {
		return err
	}
	s1, s2 := in[1:1+Size], in[1+Size:]

	c2 := make([]byte, Size)
	if binary.BigEndian.Uint32(s1[4:8]) == 0 {
		copy(c2, s1)
	} else {
		_, pos, ok := findDigest(s1, serverKey[:serverKeyTextSize], clientScheme)
		if !ok {
			return fmt.Errorf("%w: S1 claims version %#08x but carries no valid digest",
				ErrDigest, binary.BigEndian.Uint32(s1[4:8]))
		}
		if !isSigned(s2, signingKey(serverKey, clientDigest)) && !bytes.Equal(s2[headerSize:], c1[headerSize:]) {
			return fmt.Errorf("%w: S2 is neither signed for C1's digest nor an echo of C1", ErrDigest)
		}
		if err := cfg.fillRandom(c2[:signedSize]); err != nil {
			return err
		}
		copy(c2[signedSize:], signature(c2, signingKey(clientKey, s1[pos:pos+digestSize])))
	}
	if _, err := rw.Write(c2); err != nil {
		return fmt.Errorf("handshake: writing C2: %w", err)
	}
	return nil
}
