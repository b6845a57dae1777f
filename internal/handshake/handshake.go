// Package handshake implements the RTMP handshake that opens every RTMP
// connection: the client sends C0 and C1, the server answers S0, S1 and S2,
// and the client finishes with C2. Server is the side the ingest server runs;
// Client is the other side, for tests and load tools.
//
// C0 and S0 are one byte, the protocol version, which must be 3. C1, S1, C2
// and S2 are Size bytes each. Two forms of them are in use:
//
//   - The simple form of the RTMP specification: C1 and S1 are a 4-byte time,
//     4 zero bytes and 1528 random bytes; C2 echoes S1 and S2 echoes C1.
//   - The digest form that Flash Player 9 and later, FMLE, ffmpeg and OBS
//     send, and librtmp (rtmpdump) when it does SWF verification: bytes 4..7
//     of C1 carry a non-zero player version, and C1 carries an HMAC-SHA256
//     digest of the rest of the packet at a position the packet itself
//     gives. Under scheme 0 the digest sits at 12 plus the sum of bytes
//     8..11 modulo 728; under scheme 1 at 776 plus the sum of bytes 772..775
//     modulo 728. A server that recognises the digest answers with its own
//     digest in S1, under the same scheme, and an S2 signed for the client's
//     digest; some clients (ffmpeg when playing, librtmp whenever it sent the
//     digest form) refuse a server whose S1 claims a version but fails this
//     check.
//
// Server answers in the digest form when C1's digest validates, and in the
// simple form otherwise. It never rejects a C2 that is neither a correct echo
// nor a correct digest, because real encoders send such C2s; Info reports it.
//
// Encrypted RTMP (RTMPE: C0 = 6, and 8 or 9 for its later variants) agrees a
// Diffie-Hellman key inside the digest form and then RC4-encrypts the whole
// stream. This package does not implement it and answers those versions, like
// any version but 3, with ErrVersion; a client that asked for RTMPE would not
// understand a plain reply anyway.
package handshake

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

const (
	// Size is the length of C1, S1, C2 and S2.
	Size = 1536

	// Version is the only value of C0 and S0 accepted and sent.
	Version = 3

	// responseSize is what the server writes in one call: S0, S1 and S2.
	responseSize = 1 + 2*Size

	// headerSize is the time (bytes 0..3) and version (bytes 4..7) that open
	// C1 and S1; the rest of the packet is random, or two digest blocks.
	headerSize = 8
	// blockSize is the size of each of the two blocks after the header in the
	// digest form. A scheme's block opens with 4 bytes whose sum, modulo
	// digestRange, places the digest within the rest of that block.
	blockSize = 764
	// digestSize is the length of an HMAC-SHA256 digest.
	digestSize = sha256.Size
	// digestRange is how many positions the digest can take in its block.
	digestRange = blockSize - 4 - digestSize
	// signedSize is the part of a digest-form C2 or S2 that its trailing
	// signature covers.
	signedSize = Size - digestSize

	// schemeCount is the number of digest schemes: scheme 0 puts the digest
	// in the block at bytes 8..771, scheme 1 in the block at 772..1535.
	schemeCount = 2

	// serverVersion is what Server puts in bytes 4..7 of a digest-form S1. Any
	// non-zero value marks the digest form; ffmpeg checks the server's digest
	// when byte 4 is 3 or more, librtmp when it is non-zero.
	serverVersion = 0x0d0e0a0d
	// clientVersion is what Client puts in bytes 4..7 of C1: Flash Player
	// 9.0.124.2, the version ffmpeg claims.
	clientVersion = 0x09007c02

	// clientKeyTextSize and serverKeyTextSize are the lengths of the text
	// part of the keys, the part that keys the C1 and S1 digests.
	clientKeyTextSize = 30
	serverKeyTextSize = 36
)

// keyTail is the 32 bytes that follow the text in both handshake keys.
var keyTail = [32]byte{
	0xf0, 0xee, 0xc2, 0x4a, 0x80, 0x68, 0xbe, 0xe8,
	0x2e, 0x00, 0xd0, 0xd1, 0x02, 0x9e, 0x7e, 0x57,
	0x6e, 0xec, 0x5d, 0x2d, 0x29, 0x80, 0x6f, 0xab,
	0x93, 0xb8, 0xe6, 0x36, 0xcf, 0xeb, 0x31, 0xae,
}

var (
	// clientKey is the Genuine Flash Player key. Its first
	// clientKeyTextSize bytes key the C1 digest; all of it keys the
	// signature of a C2, with the server's digest.
	clientKey = joinKey("Genuine Adobe Flash Player 001")
	// serverKey is the Genuine Flash Media Server key. Its first
	// serverKeyTextSize bytes key the S1 digest; all of it keys the
	// signature of an S2, with the client's digest.
	serverKey = joinKey("Genuine Adobe Flash Media Server 001")
)

func joinKey(text string) []byte {
	key := make([]byte, 0, len(text)+len(keyTail))
	key = append(key, text...)
	return append(key, keyTail[:]...)
}

var (
	// ErrVersion is returned when C0 or S0 is not Version.
	ErrVersion = errors.New("handshake: unsupported RTMP version")
	// ErrDigest is returned by Client when the server's S1 claims the
	// digest form but its digest does not validate, or when S2 is neither
	// signed for the client's digest nor an echo of C1.
	ErrDigest = errors.New("handshake: server digest does not validate")
)

// Config carries what the handshake takes from its surroundings. A nil
// *Config is the same as a zero Config. With both fields fixed, the bytes a
// side writes depend only on the bytes it read, so a recorded handshake
// replays byte for byte.
type Config struct {
	// Rand supplies the random bytes of S1, S2, C1 and C2. Nil means
	// crypto/rand.Reader.
	Rand io.Reader
	// Time gives the time written in bytes 0..3 of S1 and C1, as Unix
	// milliseconds truncated to 32 bits. Nil means time.Now.
	Time func() time.Time
}

func (c *Config) rand() io.Reader {
	if c == nil || c.Rand == nil {
		return rand.Reader
	}
	return c.Rand
}

func (c *Config) now() time.Time {
	if c == nil || c.Time == nil {
		return time.Now()
	}
	return c.Time()
}

// fillRandom fills p from cfg's randomness source.
func (c *Config) fillRandom(p []byte) error {
	if _, err := io.ReadFull(c.rand(), p); err != nil {
		return fmt.Errorf("handshake: reading random bytes: %w", err)
	}
	return nil
}

// putHeader writes the time and version that open C1 or S1.
func (c *Config) putHeader(p []byte, version uint32) {
	binary.BigEndian.PutUint32(p[0:4], uint32(c.now().UnixMilli()))
	binary.BigEndian.PutUint32(p[4:8], version)
}

// digestPos returns where the digest of packet p sits under scheme: past the
// 4 bytes that open the scheme's block, at their sum modulo digestRange.
func digestPos(p []byte, scheme int) int {
	block := headerSize + scheme*blockSize
	sum := int(p[block]) + int(p[block+1]) + int(p[block+2]) + int(p[block+3])
	return block + 4 + sum%digestRange
}

// packetDigest returns the HMAC-SHA256, under key, of packet p without the
// digestSize bytes at pos.
func packetDigest(p []byte, pos int, key []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write(p[:pos])
	mac.Write(p[pos+digestSize:])
	return mac.Sum(nil)
}

// putDigest writes the digest of packet p, under key, at scheme's position
// and returns that position.
func putDigest(p []byte, scheme int, key []byte) int {
	pos := digestPos(p, scheme)
	copy(p[pos:pos+digestSize], packetDigest(p, pos, key))
	return pos
}

// findDigest looks for a valid digest under key in packet p, trying scheme
// first and then the other one. It returns the scheme and position found.
func findDigest(p []byte, key []byte, first int) (scheme, pos int, ok bool) {
	for i := range schemeCount {
		scheme := (first + i) % schemeCount
		pos := digestPos(p, scheme)
		if hmac.Equal(p[pos:pos+digestSize], packetDigest(p, pos, key)) {
			return scheme, pos, true
		}
	}
	return 0, 0, false
}

// signingKey derives the key that signs C2 or S2 from the full key of the
// signing side and the digest that the other side sent in C1 or S1.
func signingKey(fullKey, peerDigest []byte) []byte {
	mac := hmac.New(sha256.New, fullKey)
	mac.Write(peerDigest)
	return mac.Sum(nil)
}

// signature returns the HMAC-SHA256, under key, of the first signedSize bytes
// of the C2 or S2 p.
func signature(p, key []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write(p[:signedSize])
	return mac.Sum(nil)
}

// isSigned reports whether C2 or S2 p ends with its signature under key.
func isSigned(p, key []byte) bool {
	return hmac.Equal(p[signedSize:], signature(p, key))
}

// readFull reads len(p) bytes of the named part of the handshake. A stream
// that ends before then gives io.ErrUnexpectedEOF, or io.EOF when nothing at
// all was read and eofOK is set (a peer that connected and left).
func readFull(r io.Reader, p []byte, part string, eofOK bool) error {
	_, err := io.ReadFull(r, p)
	if err == nil {
		return nil
	}
	if err == io.EOF && !eofOK {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("handshake: reading %s: %w", part, err)
}
