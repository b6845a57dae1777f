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

// ReadEnvFile reads the env file at path; see ParseEnv for the syntax and
// what is returned on syntax errors. An error for a missing file satisfies
// errors.Is(err, fs.ErrNotExist).
func ReadEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseEnv(f, path)
}

// envFile is what parseEnv read: the variables of the lines it could
// parse, and one error per line it could not.
type envFile struct {
	vars    map[string]string
	errs    []error
	badKeys map[string]bool // variables named on a line with a syntax error
}

func readEnvFile(path string) (envFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return envFile{}, err
	}
	defer f.Close()
	return parseEnv(f, path), nil
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
// Every bad line is reported: the error joins (errors.Join) one error per
// bad line, each wrapping ErrSyntax and naming name:line, never quoting the
// line, which may hold a secret; the variables of the good lines are
// returned with it.
func ParseEnv(r io.Reader, name string) (map[string]string, error) {
	f := parseEnv(r, name)
	return f.vars, errors.Join(f.errs...)
}

func parseEnv(r io.Reader, name string) envFile {
	f := envFile{vars: make(map[string]string), badKeys: make(map[string]bool)}
	fail := func(line int, err error) {
		f.errs = append(f.errs, fmt.Errorf("%s:%d: %w: %w", name, line, ErrSyntax, err))
	}
	sc := bufio.NewScanner(r)
	// Room for the line ending, so that the check below, not the
	// Scanner's own, decides the limit exactly.
	sc.Buffer(make([]byte, 0, 4096), maxEnvLine+2)
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSuffix(sc.Bytes(), []byte("\r"))
		if len(text) > maxEnvLine {
			fail(line, fmt.Errorf("line longer than %d bytes", maxEnvLine))
			continue
		}
		if line == 1 {
			text = bytes.TrimPrefix(text, []byte("\uFEFF"))
		}
		key, value, err := parseEnvLine(string(text))
		if err != nil {
			fail(line, err)
			if key != "" {
				f.badKeys[key] = true
			}
			continue
		}
		if key != "" {
			f.vars[key] = value
		}
	}
	if err := sc.Err(); err != nil {
		// The scanner cannot go on past a line longer than its buffer.
		if errors.Is(err, bufio.ErrTooLong) {
			fail(line+1, fmt.Errorf("line longer than %d bytes; the lines after it were not read", maxEnvLine))
		} else {
			f.errs = append(f.errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	return f
}

// parseEnvLine parses one line; a blank or comment line gives key "". An
// error about the value comes with the key.
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
		return key, "", fmt.Errorf("%s: %w", key, err)
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
//
// The error reports every problem at once: each syntax error of the file
// (wrapping ErrSyntax) and each bad value (wrapping ErrInvalid), except
// values that follow only from a variable whose line was unreadable.
func Load(path string, required bool, environ func(string) (string, bool)) (Config, []string, error) {
	if environ == nil {
		environ = func(string) (string, bool) { return "", false }
	}
	var f envFile
	if path != "" {
		var err error
		f, err = readEnvFile(path)
		if errors.Is(err, fs.ErrNotExist) && !required {
			f = envFile{}
		} else if err != nil {
			return Config{}, nil, fmt.Errorf("config: %w", err)
		}
	}
	file := f.vars

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

	c, errs := parse(func(name string) (string, bool) {
		if v, ok := environ(name); ok && strings.TrimSpace(v) != "" {
			return v, true
		}
		v, ok := file[name]
		return v, ok
	})
	if len(f.errs) == 0 && len(errs) == 0 {
		return c, warnings, nil
	}
	all := slices.Clone(f.errs)
	for _, err := range errs {
		// "JWT_SECRET: required" when its line had a syntax error says
		// nothing new.
		if ve, ok := err.(*varError); ok && f.badKeys[ve.name] {
			continue
		}
		all = append(all, err)
	}
	return Config{}, warnings, errors.Join(all...)
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
