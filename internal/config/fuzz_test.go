package config

import (
	"sort"
	"strings"
	"testing"
)

// FuzzParseEnv checks that ParseEnv never panics, that every key it returns
// is a valid name, and that writing what it returns back as double-quoted
// lines parses to the same variables.
func FuzzParseEnv(f *testing.F) {
	for _, tt := range parseEnvTests {
		if len(tt.in) <= 4096 { // the long-line cases would only slow the fuzzer
			f.Add([]byte(tt.in))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		vars, err := ParseEnv(strings.NewReader(string(data)), "fuzz.env")
		if err != nil {
			return
		}
		keys := make([]string, 0, len(vars))
		for k := range vars {
			if !envKey.MatchString(k) {
				t.Fatalf("bad key %q", k)
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)

		var b strings.Builder
		for _, k := range keys {
			line := k + "=" + quoteEnv(vars[k])
			if len(line) > maxEnvLine {
				return // quoting made the line too long to read back
			}
			b.WriteString(line + "\n")
		}
		again, err := ParseEnv(strings.NewReader(b.String()), "rewritten.env")
		if err != nil {
			t.Fatalf("rewritten file does not parse: %v\n%s", err, b.String())
		}
		if len(again) != len(vars) {
			t.Fatalf("rewritten file has %d variables, want %d", len(again), len(vars))
		}
		for k, v := range vars {
			if again[k] != v {
				t.Fatalf("%s: rewritten as %q, parsed back as %q", k, v, again[k])
			}
		}
	})
}

// quoteEnv writes v as a double-quoted env file value.
func quoteEnv(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v) + `"`
}
