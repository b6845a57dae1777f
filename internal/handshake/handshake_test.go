package handshake

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var (
	update = flag.Bool("update", false, "rewrite the golden files and the seed corpora")
	record = flag.Bool("record", false, "record the handshakes of real peers under testdata/peers (run -update afterwards)")
)

// xorshiftRand is the random source of golden tests: an xorshift32
// generator, whose output no Go release can change.
type xorshiftRand struct{ state uint32 }

func (r *xorshiftRand) Read(p []byte) (int, error) {
	for i := range p {
		r.state ^= r.state << 13
		r.state ^= r.state >> 17
		r.state ^= r.state << 5
		p[i] = byte(r.state >> 24)
	}
	return len(p), nil
}

// fixedTime is the clock of golden tests.
var fixedTime = time.Date(2024, 5, 17, 12, 0, 0, 0, time.UTC)

// fixedConfig returns a Config whose output depends only on its input, as
// golden files need. Each call starts the random stream afresh.
func fixedConfig() *Config {
	return &Config{
		Rand: &xorshiftRand{state: 0x2545f491},
		Time: func() time.Time { return fixedTime },
	}
}

// randomBytes returns n deterministic bytes drawn from seed.
func randomBytes(seed uint32, n int) []byte {
	p := make([]byte, n)
	r := xorshiftRand{state: seed}
	r.Read(p)
	return p
}

// The helpers below compute the digest form independently of the package
// code, straight from its description, so that tests check one against the
// other.

func hmacSHA256(key []byte, parts ...[]byte) []byte {
	mac := hmac.New(sha256.New, key)
	for _, p := range parts {
		mac.Write(p)
	}
	return mac.Sum(nil)
}

var (
	testKeyTail = []byte{
		0xf0, 0xee, 0xc2, 0x4a, 0x80, 0x68, 0xbe, 0xe8, 0x2e, 0x00, 0xd0, 0xd1, 0x02, 0x9e, 0x7e, 0x57,
		0x6e, 0xec, 0x5d, 0x2d, 0x29, 0x80, 0x6f, 0xab, 0x93, 0xb8, 0xe6, 0x36, 0xcf, 0xeb, 0x31, 0xae,
	}
	testPlayerKey = append([]byte("Genuine Adobe Flash Player 001"), testKeyTail...)
	testFMSKey    = append([]byte("Genuine Adobe Flash Media Server 001"), testKeyTail...)
)

// testDigestPos is where scheme 0 or 1 places the digest of p.
func testDigestPos(p []byte, scheme int) int {
	off := 8
	if scheme == 1 {
		off = 772
	}
	sum := int(p[off]) + int(p[off+1]) + int(p[off+2]) + int(p[off+3])
	return off + 4 + sum%728
}

// testHasDigest reports whether p carries a valid digest under key at the
// scheme's position, and returns the digest.
func testHasDigest(p []byte, scheme int, key []byte) ([]byte, bool) {
	pos := testDigestPos(p, scheme)
	want := hmacSHA256(key, p[:pos], p[pos+32:])
	return p[pos : pos+32], bytes.Equal(p[pos:pos+32], want)
}

// digestC1 builds a digest-form C1 with the given version, scheme and seed.
func digestC1(seed uint32, version uint32, scheme int) []byte {
	c1 := randomBytes(seed, Size)
	binary.BigEndian.PutUint32(c1[4:8], version)
	pos := testDigestPos(c1, scheme)
	copy(c1[pos:], hmacSHA256(testPlayerKey[:30], c1[:pos], c1[pos+32:]))
	return c1
}

// simpleC1 builds a simple-form C1.
func simpleC1(seed uint32) []byte {
	c1 := randomBytes(seed, Size)
	binary.BigEndian.PutUint32(c1[4:8], 0)
	return c1
}

// digestC2 builds the C2 that a digest-form client answers S1 with.
func digestC2(seed uint32, s1 []byte, scheme int) []byte {
	serverDigest, _ := testHasDigest(s1, scheme, testFMSKey[:36])
	c2 := randomBytes(seed, Size)
	copy(c2[Size-32:], hmacSHA256(hmacSHA256(testPlayerKey, serverDigest), c2[:Size-32]))
	return c2
}

// readWriter joins a reader and a writer into an io.ReadWriter.
type readWriter struct {
	io.Reader
	io.Writer
}

// runServer runs ServerWithInfo with input as everything the client sends,
// and returns what the server wrote.
func runServer(t *testing.T, input []byte, cfg *Config) ([]byte, Info, error) {
	t.Helper()
	var out bytes.Buffer
	info, err := ServerWithInfo(readWriter{bytes.NewReader(input), &out}, cfg)
	return out.Bytes(), info, err
}

func join(parts ...[]byte) []byte {
	return bytes.Join(parts, nil)
}

// checkGolden compares got with the golden file, or rewrites it with -update.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		writeFile(t, path, got)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run with -update if the change is intended)", path)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkResponse checks an S0+S1+S2 that Server wrote in answer to c1, in the
// form wantDigest asks, against the independent helpers above.
func checkResponse(t *testing.T, resp, c1 []byte, wantDigest bool, scheme int) {
	t.Helper()
	if len(resp) != 1+2*Size {
		t.Fatalf("response is %d bytes, want %d", len(resp), 1+2*Size)
	}
	if resp[0] != 3 {
		t.Errorf("S0 = %d, want 3", resp[0])
	}
	s1, s2 := resp[1:1+Size], resp[1+Size:]
	if got := binary.BigEndian.Uint32(s1[0:4]); got != uint32(fixedTime.UnixMilli()) {
		t.Errorf("S1 time = %#x, want %#x", got, uint32(fixedTime.UnixMilli()))
	}
	if !wantDigest {
		if got := binary.BigEndian.Uint32(s1[4:8]); got != 0 {
			t.Errorf("simple S1 version = %#x, want 0", got)
		}
		if !bytes.Equal(s2, c1) {
			t.Errorf("simple S2 does not echo C1")
		}
		return
	}
	if got := s1[4]; got < 3 {
		t.Errorf("digest S1 version byte = %d; ffmpeg checks digests only from 3 on", got)
	}
	if _, ok := testHasDigest(s1, scheme, testFMSKey[:36]); !ok {
		t.Errorf("S1 has no valid digest for scheme %d", scheme)
	}
	clientDigest, ok := testHasDigest(c1, scheme, testPlayerKey[:30])
	if !ok {
		t.Fatalf("test C1 has no valid digest for scheme %d", scheme)
	}
	want := hmacSHA256(hmacSHA256(testFMSKey, clientDigest), s2[:Size-32])
	if !bytes.Equal(s2[Size-32:], want) {
		t.Errorf("S2 is not signed for the client's digest")
	}
}

func TestDigestPos(t *testing.T) {
	tests := []struct {
		name   string
		scheme int
		offset [4]byte
		want   int
	}{
		{"scheme 0 zero offset", 0, [4]byte{0, 0, 0, 0}, 12},
		{"scheme 0 small", 0, [4]byte{1, 2, 3, 4}, 22},
		{"scheme 0 last position", 0, [4]byte{255, 255, 217, 0}, 739},
		{"scheme 0 wraps", 0, [4]byte{255, 255, 218, 0}, 12},
		{"scheme 0 largest sum", 0, [4]byte{255, 255, 255, 255}, 12 + 1020 - 728},
		{"scheme 1 zero offset", 1, [4]byte{0, 0, 0, 0}, 776},
		{"scheme 1 small", 1, [4]byte{4, 3, 2, 1}, 786},
		{"scheme 1 last position", 1, [4]byte{0, 217, 255, 255}, 1503},
		{"scheme 1 largest sum", 1, [4]byte{255, 255, 255, 255}, 776 + 1020 - 728},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := make([]byte, Size)
			copy(p[8+tt.scheme*764:], tt.offset[:])
			if got := digestPos(p, tt.scheme); got != tt.want {
				t.Errorf("digestPos = %d, want %d", got, tt.want)
			}
			if got := testDigestPos(p, tt.scheme); got != tt.want {
				t.Errorf("testDigestPos = %d, want %d", got, tt.want)
			}
			// The digest must stay inside the scheme's block.
			if end := tt.want + 32; end > 8+(tt.scheme+1)*764 {
				t.Errorf("digest ends at %d, past its block", end)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	if !bytes.Equal(clientKey, testPlayerKey) || len(clientKey) != 62 {
		t.Errorf("clientKey differs from the Genuine Flash Player key")
	}
	if !bytes.Equal(serverKey, testFMSKey) || len(serverKey) != 68 {
		t.Errorf("serverKey differs from the Genuine FMS key")
	}
}

// TestServerGolden checks Server's exact output for fixed C1s, Rand and
// Time, and the properties the output must have.
func TestServerGolden(t *testing.T) {
	tests := []struct {
		name       string
		c1         []byte
		wantDigest bool
		wantScheme int
	}{
		{"simple", simpleC1(1), false, 0},
		{"digest-scheme0", digestC1(2, 0x09007c02, 0), true, 0},
		{"digest-scheme1", digestC1(3, 0x80000702, 1), true, 1},
		{"bad-digest", func() []byte {
			c1 := digestC1(4, 0x09007c02, 0)
			c1[testDigestPos(c1, 0)] ^= 1
			return c1
		}(), false, 0},
		{"zero-version-with-digest", digestC1(5, 0, 0), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c2 := randomBytes(99, Size)
			resp, info, err := runServer(t, join([]byte{3}, tt.c1, c2), fixedConfig())
			if err != nil {
				t.Fatalf("Server: %v", err)
			}
			if info.Digest != tt.wantDigest || info.Scheme != tt.wantScheme {
				t.Errorf("Info digest=%v scheme=%d, want digest=%v scheme=%d",
					info.Digest, info.Scheme, tt.wantDigest, tt.wantScheme)
			}
			if want := binary.BigEndian.Uint32(tt.c1[4:8]); info.ClientVersion != want {
				t.Errorf("ClientVersion = %#x, want %#x", info.ClientVersion, want)
			}
			if want := binary.BigEndian.Uint32(tt.c1[0:4]); info.ClientTime != want {
				t.Errorf("ClientTime = %#x, want %#x", info.ClientTime, want)
			}
			checkResponse(t, resp, tt.c1, tt.wantDigest, tt.wantScheme)
			checkGolden(t, filepath.Join("testdata", "golden", tt.name+".s0s1s2"), resp)
		})
	}
}

// TestServerC2 checks that no kind of C2 is rejected and that Info tells
// them apart.
func TestServerC2(t *testing.T) {
	// The server's S1 is fixed by fixedConfig, so compute it once.
	digestS1 := func(c1 []byte) []byte {
		resp, _, err := runServer(t, join([]byte{3}, c1, make([]byte, Size)), fixedConfig())
		if err != nil {
			t.Fatal(err)
		}
		return resp[1 : 1+Size]
	}
	dc1, sc1 := digestC1(7, 0x09007c02, 1), simpleC1(8)
	ds1, ss1 := digestS1(dc1), digestS1(sc1)
	retimed := func(s1 []byte) []byte {
		c2 := bytes.Clone(s1)
		binary.BigEndian.PutUint32(c2[4:8], 12345)
		return c2
	}
	tests := []struct {
		name string
		c1   []byte
		c2   []byte
		want C2Form
	}{
		{"digest C2", dc1, digestC2(9, ds1, 1), C2Digest},
		{"echo after digest S1", dc1, ds1, C2Echo},
		{"echo with time2 set", sc1, retimed(ss1), C2Echo},
		{"exact echo", sc1, ss1, C2Echo},
		{"zeros after digest S1", dc1, make([]byte, Size), C2Mismatch},
		{"digest C2 after simple S1", sc1, digestC2(10, ss1, 0), C2Mismatch},
		{"random", sc1, randomBytes(11, Size), C2Mismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, info, err := runServer(t, join([]byte{3}, tt.c1, tt.c2), fixedConfig())
			if err != nil {
				t.Fatalf("Server rejected the C2: %v", err)
			}
			if info.C2 != tt.want {
				t.Errorf("Info.C2 = %v, want %v", info.C2, tt.want)
			}
		})
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestServerVersion(t *testing.T) {
	for _, v := range []byte{0, 1, 2, 4, 6, 8, 9, 'G', 0x16, 0xff} {
		input := join([]byte{v}, digestC1(1, 0x09007c02, 0), make([]byte, Size))
		r := &countingReader{r: bytes.NewReader(input)}
		var out bytes.Buffer
		_, err := ServerWithInfo(readWriter{r, &out}, nil)
		if !errors.Is(err, ErrVersion) {
			t.Errorf("C0 %d: err = %v, want ErrVersion", v, err)
		}
		if r.n != 1 {
			t.Errorf("C0 %d: read %d bytes before rejecting, want 1", v, r.n)
		}
		if out.Len() != 0 {
			t.Errorf("C0 %d: wrote %d bytes, want none", v, out.Len())
		}
	}
}

func TestServerShortRead(t *testing.T) {
	full := join([]byte{3}, digestC1(1, 0x09007c02, 0), randomBytes(2, Size))
	tests := []struct {
		name string
		n    int
		want error
	}{
		{"nothing", 0, io.EOF},
		{"C0 only", 1, io.ErrUnexpectedEOF},
		{"part of C1", 100, io.ErrUnexpectedEOF},
		{"C1 but one byte", 1 + Size - 1, io.ErrUnexpectedEOF},
		{"no C2", 1 + Size, io.ErrUnexpectedEOF},
		{"part of C2", 1 + Size + 700, io.ErrUnexpectedEOF},
		{"C2 but one byte", 2 * Size, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runServer(t, full[:tt.n], nil)
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if tt.want == io.ErrUnexpectedEOF && errors.Is(err, io.EOF) {
				t.Errorf("err = %v also matches io.EOF", err)
			}
		})
	}
}

// TestServerReadsExactly checks that Server leaves what follows C2 in the
// caller's buffered reader.
func TestServerReadsExactly(t *testing.T) {
	rest := []byte("\x03\x00\x00\x00\x00\x00\x5b\x14\x00\x00\x00\x00\x02\x00\x07connect")
	input := join([]byte{3}, digestC1(1, 0x09007c02, 0), randomBytes(2, Size), rest)
	br := bufio.NewReader(bytes.NewReader(input))
	if err := Server(readWriter{br, io.Discard}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, rest) {
		t.Errorf("after the handshake the reader holds %q, want %q", got, rest)
	}
}

// errWriter fails every write.
type errWriter struct{}

var errWrite = errors.New("write failed")

func (errWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestServerWriteError(t *testing.T) {
	input := join([]byte{3}, simpleC1(1), make([]byte, Size))
	if err := Server(readWriter{bytes.NewReader(input), errWriter{}}, nil); !errors.Is(err, errWrite) {
		t.Errorf("err = %v, want one wrapping the write error", err)
	}
}

func TestServerRandError(t *testing.T) {
	errRand := errors.New("no entropy")
	for _, c1 := range [][]byte{simpleC1(1), digestC1(2, 0x09007c02, 0)} {
		input := join([]byte{3}, c1, make([]byte, Size))
		cfg := &Config{Rand: errReader{errRand}}
		if err := Server(readWriter{bytes.NewReader(input), io.Discard}, cfg); !errors.Is(err, errRand) {
			t.Errorf("err = %v, want one wrapping the Rand error", err)
		}
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// simpleClient is a client that knows only the simple form. It checks
// that S2 echoes its C1 and echoes S1 as C2.
func simpleClient(rw io.ReadWriter, cfg *Config) error {
	c1 := simpleC1(42)
	if _, err := rw.Write(join([]byte{3}, c1)); err != nil {
		return err
	}
	in := make([]byte, 1+2*Size)
	if _, err := io.ReadFull(rw, in); err != nil {
		return err
	}
	if !bytes.Equal(in[1+Size:], c1) {
		return errors.New("S2 does not echo C1")
	}
	_, err := rw.Write(in[1 : 1+Size])
	return err
}

// TestClientServer runs both sides over net.Pipe.
func TestClientServer(t *testing.T) {
	tests := []struct {
		name       string
		client     func(io.ReadWriter, *Config) error
		cfg        func() *Config
		wantDigest bool
		wantC2     C2Form
	}{
		{"digest", Client, func() *Config { return nil }, true, C2Digest},
		{"digest fixed config", Client, fixedConfig, true, C2Digest},
		{"simple", simpleClient, func() *Config { return nil }, false, C2Echo},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clientConn, serverConn := net.Pipe()
			type result struct {
				info Info
				err  error
			}
			done := make(chan result, 1)
			go func() {
				info, err := ServerWithInfo(serverConn, tt.cfg())
				serverConn.Close()
				done <- result{info, err}
			}()
			clientErr := tt.client(clientConn, tt.cfg())
			clientConn.Close()
			r := <-done
			if clientErr != nil {
				t.Errorf("client: %v", clientErr)
			}
			if r.err != nil {
				t.Fatalf("server: %v", r.err)
			}
			if r.info.Digest != tt.wantDigest || r.info.C2 != tt.wantC2 {
				t.Errorf("Info = %+v, want Digest=%v C2=%v", r.info, tt.wantDigest, tt.wantC2)
			}
		})
	}
}

// scriptedServer answers a C0+C1 with whatever respond returns and then
// reads a C2, which it hands to check.
type scriptedServer struct {
	respond func(c1 []byte) []byte
	check   func(c1, resp, c2 []byte) error
}

func TestClient(t *testing.T) {
	simpleS1 := func(c1 []byte) []byte { return join([]byte{3}, simpleC1(20), c1) }
	digestS1 := func(c1 []byte) []byte {
		resp, _, err := runServer(t, join([]byte{3}, c1, make([]byte, Size)), fixedConfig())
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	echoC2 := func(c1, resp, c2 []byte) error {
		if !bytes.Equal(c2, resp[1:1+Size]) {
			return errors.New("C2 does not echo S1")
		}
		return nil
	}
	digestC2 := func(c1, resp, c2 []byte) error {
		s1 := resp[1 : 1+Size]
		serverDigest, ok := testHasDigest(s1, 0, testFMSKey[:36])
		if !ok {
			return errors.New("test S1 has no scheme 0 digest")
		}
		if !bytes.Equal(c2[Size-32:], hmacSHA256(hmacSHA256(testPlayerKey, serverDigest), c2[:Size-32])) {
			return errors.New("C2 is not signed for the server's digest")
		}
		return nil
	}
	tests := []struct {
		name    string
		server  scriptedServer
		wantErr error
	}{
		{"digest server", scriptedServer{digestS1, digestC2}, nil},
		{"simple server", scriptedServer{simpleS1, echoC2}, nil},
		{"digest S1 with S2 echoing C1", scriptedServer{func(c1 []byte) []byte {
			resp := digestS1(c1)
			copy(resp[1+Size:], c1)
			return resp
		}, digestC2}, nil},
		{"digest S1 with S2 signed for another digest", scriptedServer{func(c1 []byte) []byte {
			resp := digestS1(c1)
			resp[len(resp)-1] ^= 1
			return resp
		}, nil}, ErrDigest},
		{"version without digest", scriptedServer{func(c1 []byte) []byte {
			resp := simpleS1(c1)
			resp[1+4] = 3
			return resp
		}, nil}, ErrDigest},
		{"S0 is 6", scriptedServer{func(c1 []byte) []byte {
			resp := simpleS1(c1)
			resp[0] = 6
			return resp
		}, nil}, ErrVersion},
		{"short S1", scriptedServer{func(c1 []byte) []byte { return simpleS1(c1)[:1000] }, nil}, io.ErrUnexpectedEOF},
		{"S0 only", scriptedServer{func(c1 []byte) []byte { return []byte{3} }, nil}, io.ErrUnexpectedEOF},
		{"nothing", scriptedServer{func(c1 []byte) []byte { return nil }, nil}, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clientConn, serverConn := net.Pipe()
			done := make(chan error, 1)
			go func() {
				defer serverConn.Close()
				c0c1 := make([]byte, 1+Size)
				if _, err := io.ReadFull(serverConn, c0c1); err != nil {
					done <- err
					return
				}
				if c0c1[0] != 3 {
					done <- errors.New("C0 is not 3")
					return
				}
				c1 := c0c1[1:]
				if _, ok := testHasDigest(c1, 0, testPlayerKey[:30]); !ok {
					done <- errors.New("C1 has no scheme 0 digest")
					return
				}
				resp := tt.server.respond(c1)
				if _, err := serverConn.Write(resp); err != nil {
					done <- err
					return
				}
				if tt.server.check == nil {
					done <- nil
					return
				}
				c2 := make([]byte, Size)
				if _, err := io.ReadFull(serverConn, c2); err != nil {
					done <- err
					return
				}
				done <- tt.server.check(c1, resp, c2)
			}()
			err := Client(clientConn, nil)
			clientConn.Close()
			serverErr := <-done
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("Client: err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && serverErr != nil {
				t.Errorf("server: %v", serverErr)
			}
		})
	}
}
