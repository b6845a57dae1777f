package handshake

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// seed is one entry of a committed seed corpus.
type seed struct {
	name string
	data []byte
}

// serverSeeds are the inputs FuzzServer starts from: the recorded real
// peers and the cases of the table tests.
func serverSeeds(t testing.TB) []seed {
	var seeds []seed
	for _, peer := range realPeers {
		data, err := os.ReadFile(recordingPath(peer.name, "c0c1c2"))
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, seed{peer.name, data})
	}
	c2 := randomBytes(99, Size)
	badDigest := digestC1(4, 0x09007c02, 0)
	badDigest[testDigestPos(badDigest, 0)] ^= 1
	return append(seeds,
		seed{"simple", join([]byte{3}, simpleC1(1), c2)},
		seed{"digest-scheme0", join([]byte{3}, digestC1(2, 0x09007c02, 0), c2)},
		seed{"digest-scheme1", join([]byte{3}, digestC1(3, 0x80000702, 1), c2)},
		seed{"bad-digest", join([]byte{3}, badDigest, c2)},
		seed{"zero-version-with-digest", join([]byte{3}, digestC1(5, 0, 0), c2)},
		seed{"rtmpe-version", join([]byte{6}, digestC1(2, 0x09007c02, 0), c2)},
		seed{"http-request", []byte("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")},
		seed{"short-c1", join([]byte{3}, simpleC1(1)[:700])},
		seed{"no-c2", join([]byte{3}, digestC1(2, 0x09007c02, 0))},
		seed{"empty", nil},
	)
}

// clientC0C1 returns the C0+C1 that Client writes under fixedConfig.
func clientC0C1(t testing.TB) []byte {
	var out bytes.Buffer
	if err := Client(readWriter{bytes.NewReader(nil), &out}, fixedConfig()); err == nil {
		t.Fatal("Client succeeded with no server")
	}
	return out.Bytes()
}

// clientSeeds are the inputs FuzzClient starts from: answers from Server
// and from a simple server to the C1 that Client sends under fixedConfig,
// and broken variants.
func clientSeeds(t testing.TB) []seed {
	c0c1 := clientC0C1(t)
	var out bytes.Buffer
	if _, err := ServerWithInfo(readWriter{bytes.NewReader(join(c0c1, make([]byte, Size))), &out}, fixedConfig()); err != nil {
		t.Fatal(err)
	}
	digest := out.Bytes()
	simple := join([]byte{3}, simpleC1(20), c0c1[1:])
	badS2 := bytes.Clone(digest)
	badS2[len(badS2)-1] ^= 1
	return []seed{
		{"digest-server", digest},
		{"simple-server", simple},
		{"bad-s2", badS2},
		{"rtmpe-version", join([]byte{6}, digest[1:])},
		{"short-s1", digest[:900]},
		{"empty", nil},
	}
}

// corpusFile renders data in the format of the files under testdata/fuzz.
func corpusFile(data []byte) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", data)
}

// TestSeedCorpus checks that the committed seed corpora hold the seeds, and
// rewrites them with -update.
func TestSeedCorpus(t *testing.T) {
	if *record {
		t.Skip("the recordings are being rewritten; run -update afterwards to refresh the corpus")
	}
	corpora := []struct {
		fuzzer string
		seeds  []seed
	}{
		{"FuzzServer", serverSeeds(t)},
		{"FuzzClient", clientSeeds(t)},
	}
	for _, c := range corpora {
		for _, s := range c.seeds {
			path := filepath.Join("testdata", "fuzz", c.fuzzer, s.name)
			checkGolden(t, path, corpusFile(s.data))
		}
	}
}

// FuzzServer feeds arbitrary bytes to Server as everything the client sends.
func FuzzServer(f *testing.F) {
	for _, s := range serverSeeds(f) {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &countingReader{r: bytes.NewReader(data)}
		var out bytes.Buffer
		info, err := ServerWithInfo(readWriter{r, &out}, fixedConfig())
		if r.n > 1+2*Size {
			t.Fatalf("read %d bytes, more than C0+C1+C2", r.n)
		}
		complete := len(data) >= 1+2*Size && data[0] == 3
		if complete != (err == nil) {
			t.Fatalf("%d bytes starting %#02x: err = %v", len(data), data[:min(len(data), 1)], err)
		}
		if err != nil {
			if n := out.Len(); n != 0 && n != 1+2*Size {
				t.Fatalf("wrote %d bytes before failing", n)
			}
			return
		}
		c1 := data[1 : 1+Size]
		_, valid0 := testHasDigest(c1, 0, testPlayerKey[:30])
		_, valid1 := testHasDigest(c1, 1, testPlayerKey[:30])
		wantDigest := binary.BigEndian.Uint32(c1[4:8]) != 0 && (valid0 || valid1)
		if info.Digest != wantDigest {
			t.Fatalf("Info.Digest = %v, want %v", info.Digest, wantDigest)
		}
		checkResponse(t, out.Bytes(), c1, info.Digest, info.Scheme)
	})
}

// FuzzClient feeds arbitrary bytes to Client as everything the server sends.
func FuzzClient(f *testing.F) {
	for _, s := range clientSeeds(f) {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &countingReader{r: bytes.NewReader(data)}
		var out bytes.Buffer
		err := Client(readWriter{r, &out}, fixedConfig())
		if r.n > 1+2*Size {
			t.Fatalf("read %d bytes, more than S0+S1+S2", r.n)
		}
		if err != nil {
			return
		}
		if len(data) < 1+2*Size || data[0] != 3 {
			t.Fatalf("accepted %d bytes starting %#02x", len(data), data[:min(len(data), 1)])
		}
		if n := out.Len(); n != 1+2*Size {
			t.Fatalf("wrote %d bytes, want C0+C1+C2", n)
		}
		if s1 := data[1 : 1+Size]; binary.BigEndian.Uint32(s1[4:8]) == 0 {
			if !bytes.Equal(out.Bytes()[1+Size:], s1) {
				t.Fatal("C2 does not echo a simple S1")
			}
		}
	})
}
