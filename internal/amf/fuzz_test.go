package amf

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus under testdata/fuzz from the table vectors")

// maxSeedSize keeps large generated vectors out of the committed corpus.
const maxSeedSize = 4096

type seed struct {
	name  string
	input []byte
}

// amf0Seeds are the AMF0 table vectors that seed FuzzDecodeAMF0.
func amf0Seeds() []seed {
	var seeds []seed
	for _, tc := range amf0Values {
		seeds = append(seeds, seed{"value " + tc.name, tc.input})
	}
	for _, tc := range amf0Messages {
		seeds = append(seeds, seed{"message " + tc.name, tc.input})
	}
	for _, tc := range amf0Errors {
		seeds = append(seeds, seed{"error " + tc.name, tc.input})
	}
	return smallSeeds(seeds)
}

// amf3Seeds are the AMF3 table vectors that seed FuzzDecodeAMF3.
func amf3Seeds() []seed {
	var seeds []seed
	for _, tc := range amf3Values {
		seeds = append(seeds, seed{"value " + tc.name, tc.input})
	}
	for _, tc := range amf3Errors {
		seeds = append(seeds, seed{"error " + tc.name, tc.input})
	}
	return smallSeeds(seeds)
}

func smallSeeds(seeds []seed) []seed {
	var out []seed
	for _, s := range seeds {
		if len(s.input) <= maxSeedSize {
			out = append(out, s)
		}
	}
	return out
}

func FuzzDecodeAMF0(f *testing.F) {
	for _, s := range amf0Seeds() {
		f.Add(s.input)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, n, err := DecodeAMF0(data)
		if err == nil {
			if n < 1 || n > len(data) {
				t.Fatalf("consumed %d of %d bytes", n, len(data))
			}
			again, n2, err := DecodeAMF0(data[:n])
			if err != nil || n2 != n || !equalValues(again, v) {
				t.Fatalf("the value's own bytes decode to %#v after %d bytes, %v; want %#v after %d", again, n2, err, v, n)
			}
			checkAMF0RoundTrip(t, v)
		}

		values, err := DecodeAMF0All(data)
		if err != nil {
			return
		}
		if len(values) > 0 && !equalValues(values[0], v) {
			t.Fatalf("DecodeAMF0All's first value %#v differs from DecodeAMF0's %#v", values[0], v)
		}
		enc, err := AppendAMF0All(nil, values...)
		if errors.Is(err, ErrTooLarge) {
			return // an AMF3 key or class name longer than AMF0 can carry
		}
		if err != nil {
			t.Fatalf("AppendAMF0All: %v", err)
		}
		got, err := DecodeAMF0All(enc)
		if err != nil || !equalSlices(got, values) {
			t.Fatalf("re-encoded values decode to %#v, %v; want %#v", got, err, values)
		}
	})
}

func FuzzDecodeAMF3(f *testing.F) {
	for _, s := range amf3Seeds() {
		f.Add(s.input)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, n, err := DecodeAMF3(data)
		if err != nil {
			return
		}
		if n < 1 || n > len(data) {
			t.Fatalf("consumed %d of %d bytes", n, len(data))
		}
		again, n2, err := DecodeAMF3(data[:n])
		if err != nil || n2 != n || !equalValues(again, v) {
			t.Fatalf("the value's own bytes decode to %#v after %d bytes, %v; want %#v after %d", again, n2, err, v, n)
		}
		enc, err := AppendAMF3(nil, v)
		if err != nil {
			t.Fatalf("AppendAMF3: %v", err)
		}
		got, n, err := DecodeAMF3(enc)
		if err != nil || n != len(enc) || !equalValues(got, v) {
			t.Fatalf("re-encoded value decodes to %#v after %d of %d bytes, %v; want %#v", got, n, len(enc), err, v)
		}
		checkAMF0RoundTrip(t, v)
	})
}

// checkAMF0RoundTrip checks that a decoded value encodes as AMF0 and decodes
// back to itself.
func checkAMF0RoundTrip(t *testing.T, v any) {
	t.Helper()
	enc, err := AppendAMF0(nil, v)
	if errors.Is(err, ErrTooLarge) {
		return // an AMF3 key or class name longer than AMF0 can carry
	}
	if err != nil {
		t.Fatalf("AppendAMF0: %v", err)
	}
	got, n, err := DecodeAMF0(enc)
	if err != nil || n != len(enc) || !equalValues(got, v) {
		t.Fatalf("AMF0 re-encoding decodes to %#v after %d of %d bytes, %v; want %#v", got, n, len(enc), err, v)
	}
}

// TestSeedCorpus checks that the table vectors and the seed files committed
// under testdata/fuzz match; run it with -update-corpus to rewrite the seed
// files.
func TestSeedCorpus(t *testing.T) {
	targets := []struct {
		name  string
		seeds []seed
	}{
		{"FuzzDecodeAMF0", amf0Seeds()},
		{"FuzzDecodeAMF3", amf3Seeds()},
	}
	for _, target := range targets {
		dir := filepath.Join("testdata", "fuzz", target.name)
		if *updateCorpus {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		seen := make(map[string]bool)
		for _, s := range target.seeds {
			file := "seed-" + slug(s.name)
			if seen[file] {
				t.Fatalf("%s: two seeds named %s", target.name, file)
			}
			seen[file] = true
			path := filepath.Join(dir, file)
			want := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", s.input)
			if *updateCorpus {
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s is missing or stale; run go test -run TestSeedCorpus . -args -update-corpus", path)
			}
		}
		// Seeds of vectors since renamed or removed. Other files are inputs
		// the fuzzer found and are kept.
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), "seed-") || seen[e.Name()] {
				continue
			}
			path := filepath.Join(dir, e.Name())
			if !*updateCorpus {
				t.Errorf("%s matches no table vector; run go test -run TestSeedCorpus . -args -update-corpus", path)
				continue
			}
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// slug turns a vector name into a file name.
func slug(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return '-'
	}, name)
}
