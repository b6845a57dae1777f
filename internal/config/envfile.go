package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
)

// ErrSyntax is wrapped by every error about the syntax of an env file.
var ErrSyntax = errors.New("config: bad env file syntax")

// maxEnvLine bounds the length of one env file line.
const maxEnvLine = 64 << 10

// envKey is what a variable name must look like.
var envKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ReadEnvFile reads the env file at path; see ParseEnv for the syntax. An
// error for a missing file satisfies errors.Is(err, fs.ErrNotExist).
func ReadEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseEnv(f, path)
}

// ParseEnv parses env file text, naming it name in errors, and returns
// every variable it sets, known to this package or not. The syntax is a
// small, safe subset of the shell's:
//
//   - one KEY=VALUE per line, the key matching [A-Za-z_][A-Za-z0-9_]*, with
//     an optional "export " before it; spaces around the key and the
//     value are ignored, and so are CRLF line endings;
//   - blank lines and lines starting with # are ignored;
//   - a value in single quotes is taken literally;
//   - a value in double quotes may use \" \\ and \n, and no other escape;
//   - an unquoted value ends at a # that follows a space or tab, which
//     starts a comment, as may one after a closing quote;
//   - nothing is expanded: $HOME is five characters.
//
// A quoted value ends on its line. A later line setting the same key wins.
// An error wraps ErrSyntax and names name:line; it never quotes the line,
// which may hold a secret.
func ParseEnv(r io.Reader, name string) (map[string]string, error) {
	vars := make(map[string]string)
	sc := bufio.NewScanner(r)
	// Room for the line ending, so that the check below, not the
	// Scanner's own, decides the limit exactly.
	sc.Buffer(make([]byte, 0, 4096), maxEnvLine+2)
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSuffix(sc.Bytes(), []byte("\r"))
		if len(text) > maxEnvLine {
			return nil, fmt.Errorf("%s:%d: %w: line longer than %d bytes", name, line, ErrSyntax, maxEnvLine)
		}
		if line == 1 {
			text = bytes.TrimPrefix(text, []byte("\uFEFF"))
		}
		key, value, err := parseEnvLine(string(text))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w: %s", name, line, ErrSyntax, err)
		}
		if key != "" {
			vars[key] = value
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s:%d: %w: line longer than %d bytes", name, line+1, ErrSyntax, maxEnvLine)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return vars, nil
}

// parseEnvLine parses one line; a blank or comment line gives key "".
func parseEnvLine(line string) (key, value string, err error) {
	line = strings.TrimLeft(line, " \t")
	if line == "" || line[0] == '#' {
		return "", "", nil
	}
	if rest, ok := strings.CutPrefix(line, "export"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
		line = strings.TrimLeft(rest, " \t")
	}
	key, raw, ok := strings.Cut(line, "=")
	if !ok {
		return "", "", errors.New("want KEY=VALUE")
	}
	key = strings.TrimRight(key, " \t")
	if !envKey.MatchString(key) {
		return "", "", errors.New("bad variable name (want letters, digits and _, not starting with a digit)")
	}
	value, err = parseEnvValue(raw)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", key, err)
	}
	return key, value, nil
}

// parseEnvValue parses what follows the = of a line.
func parseEnvValue(raw string) (string, error) {
	trimmed := strings.TrimLeft(raw, " \t")
	if trimmed == "" {
		return "", nil
	}
	var value, rest string
	switch trimmed[0] {
	case '\'':
		end := strings.IndexByte(trimmed[1:], '\'')
		if end < 0 {
			return "", errors.New("no closing ' on this line")
		}
		value, rest = trimmed[1:1+end], trimmed[2+end:]
	case '"':
		var b strings.Builder
		i := 1
		for ; i < len(trimmed) && trimmed[i] != '"'; i++ {
			c := trimmed[i]
			if c != '\\' {
				b.WriteByte(c)
				continue
			}
			i++
			if i == len(trimmed) {
				break
			}
			switch trimmed[i] {
			case '"', '\\':
				b.WriteByte(trimmed[i])
			case 'n':
				b.WriteByte('\n')
			default:
				return "", errors.New(`unknown escape in double quotes (want \", \\ or \n; use single quotes for a literal backslash)`)
			}
		}
		if i >= len(trimmed) {
			return "", errors.New(`no closing " on this line`)
		}
		value, rest = b.String(), trimmed[i+1:]
	default:
		// A comment starts at a # after a space or a tab, including the
		// spaces between = and the value.
		for i := 1; i < len(raw); i++ {
			if raw[i] == '#' && (raw[i-1] == ' ' || raw[i-1] == '\t') {
				raw = raw[:i]
				break
			}
		}
		return strings.Trim(raw, " \t"), nil
	}
	rest = strings.TrimLeft(rest, " \t")
	if rest != "" && rest[0] != '#' {
		return "", errors.New("unexpected text after the closing quote")
	}
	return value, nil
}

// Load reads the configuration from the env file at path and the
// environment, with a variable set (and not empty) in environ overriding
// the file. environ works like os.LookupEnv; nil means an empty
// environment.
//
// A missing file is an error only when required is true, as for a path
// given on the command line; path "" reads no file. The warnings name
// variables in the file that the server does not read, suggesting the
// known name a typo was likely meant as.
func Load(path string, required bool, environ func(string) (string, bool)) (Config, []string, error) {
	if environ == nil {
		environ = func(string) (string, bool) { return "", false }
	}
	var file map[string]string
	if path != "" {
		var err error
		file, err = ReadEnvFile(path)
		if errors.Is(err, fs.ErrNotExist) && !required {
			file = nil
		} else if err != nil {
			return Config{}, nil, fmt.Errorf("config: %w", err)
		}
	}

	var warnings []string
	for _, key := range sortedKeys(file) {
		if _, known := lookupVariable(key); known {
			continue
		}
		w := fmt.Sprintf("%s: unknown variable %s, ignored", path, key)
		if near := nearestVariable(key); near != "" {
			w += fmt.Sprintf(" (did you mean %s?)", near)
		}
		warnings = append(warnings, w)
	}

	c, err := Parse(func(name string) (string, bool) {
		if v, ok := environ(name); ok && strings.TrimSpace(v) != "" {
			return v, true
		}
		v, ok := file[name]
		return v, ok
	})
	return c, warnings, err
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}

// nearestVariable returns the known variable that name is most likely a
// typo of, or "" when none is close: at most two edits apart, counting a
// swap of neighbours as one edit, and compared without case.
func nearestVariable(name string) string {
	best, bestDist := "", 3
	for _, v := range variables {
		if d := editDistance(strings.ToUpper(name), v.Name); d < bestDist {
			best, bestDist = v.Name, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of adjacent bytes.
func editDistance(a, b string) int {
	// rows[k][j] is the distance between a[:i-2+k] and b[:j].
	rows := [3][]int{make([]int, len(b)+1), make([]int, len(b)+1), make([]int, len(b)+1)}
	for j := range rows[2] {
		rows[2][j] = j
	}
	for i := 1; i <= len(a); i++ {
		rows[0], rows[1], rows[2] = rows[1], rows[2], rows[0]
		cur, prev, prev2 := rows[2], rows[1], rows[0]
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
	}
	return rows[2][len(b)]
}
