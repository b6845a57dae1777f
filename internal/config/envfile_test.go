package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

var parseEnvTests = []struct {
	name string
	in   string
	want map[string]string
	err  string // substring of the error; "" for success
}{
	{name: "empty", in: "", want: map[string]string{}},
	{name: "blank and comments", in: "\n  \n# comment\n   # indented comment\n\t\n", want: map[string]string{}},
	{name: "simple", in: "RTMP_PORT=1936\nLOG_DEBUG=YES\n", want: map[string]string{"RTMP_PORT": "1936", "LOG_DEBUG": "YES"}},
	{name: "no final newline", in: "A=1", want: map[string]string{"A": "1"}},
	{name: "spaces around", in: "  A  =  some value  \n", want: map[string]string{"A": "some value"}},
	{name: "tabs around", in: "\tA\t=\tv\t\n", want: map[string]string{"A": "v"}},
	{name: "export", in: "export A=1\nexport\tB=2\n", want: map[string]string{"A": "1", "B": "2"}},
	{name: "key named export", in: "export=1\n", want: map[string]string{"export": "1"}},
	{name: "key starting with export", in: "exported=1\n", want: map[string]string{"exported": "1"}},
	{name: "empty value", in: "A=\nB=   \n", want: map[string]string{"A": "", "B": ""}},
	{name: "equals in value", in: "A=b=c\n", want: map[string]string{"A": "b=c"}},
	{name: "crlf", in: "A=1\r\nB='two'\r\nC=\"three\"\r\n# c\r\n\r\n", want: map[string]string{"A": "1", "B": "two", "C": "three"}},
	{name: "bom", in: "\uFEFFA=1\n", want: map[string]string{"A": "1"}},
	{name: "last wins", in: "A=1\nA=2\n", want: map[string]string{"A": "2"}},
	{name: "lower case key", in: "my_var1=x\n_X=y\n", want: map[string]string{"my_var1": "x", "_X": "y"}},

	{name: "inline comment", in: "A=1 # one\nB=2\t# two\n", want: map[string]string{"A": "1", "B": "2"}},
	{name: "hash without space", in: "A=a#b\nB=#nocomment\n", want: map[string]string{"A": "a#b", "B": "#nocomment"}},
	{name: "only comment after equals", in: "A= # nothing\n", want: map[string]string{"A": ""}},
	{name: "no expansion", in: "A=$HOME\nB=\"${HOME}\"\nC=`ls`\n", want: map[string]string{"A": "$HOME", "B": "${HOME}", "C": "`ls`"}},
	{name: "quote inside unquoted", in: "A=it's\nB=a\"b\n", want: map[string]string{"A": "it's", "B": "a\"b"}},

	{name: "single quotes", in: "A='  spaced # not a comment  '\n", want: map[string]string{"A": "  spaced # not a comment  "}},
	{name: "single quotes literal backslash", in: `A='C:\certs\n'` + "\n", want: map[string]string{"A": `C:\certs\n`}},
	{name: "single quotes with double", in: `A='say "hi"'` + "\n", want: map[string]string{"A": `say "hi"`}},
	{name: "empty single quotes", in: "A=''\n", want: map[string]string{"A": ""}},
	{name: "double quotes", in: `A="a b"` + "\n", want: map[string]string{"A": "a b"}},
	{name: "double quotes escapes", in: `A="q\"b\\n\n"` + "\n", want: map[string]string{"A": "q\"b\\n\n"}},
	{name: "double quotes with single", in: `A="it's"` + "\n", want: map[string]string{"A": "it's"}},
	{name: "empty double quotes", in: `A=""` + "\n", want: map[string]string{"A": ""}},
	{name: "comment after quotes", in: "A='x' # c\nB=\"y\"\t#c\nC='z'   \n", want: map[string]string{"A": "x", "B": "y", "C": "z"}},
	{name: "hash inside double quotes", in: `A="a #b"` + "\n", want: map[string]string{"A": "a #b"}},

	{name: "no equals", in: "A=1\nJUST_A_NAME\n", err: "test.env:2: config: bad env file syntax: want KEY=VALUE"},
	{name: "bad key digit", in: "1A=x\n", err: "test.env:1: config: bad env file syntax: bad variable name"},
	{name: "bad key dash", in: "\n\nA-B=x\n", err: "test.env:3:"},
	{name: "bad key space", in: "A B=x\n", err: "test.env:1: config: bad env file syntax: bad variable name"},
	{name: "empty key", in: "=x\n", err: "test.env:1:"},
	{name: "export alone", in: "export\n", err: "test.env:1: config: bad env file syntax: want KEY=VALUE"},
	{name: "unclosed single", in: "A='x\n", err: "test.env:1: config: bad env file syntax: A: no closing ' on this line"},
	{name: "unclosed double", in: "A=1\nB=\"x\n", err: `test.env:2: config: bad env file syntax: B: no closing " on this line`},
	{name: "multiline double", in: "A=\"x\ny\"\n", err: `test.env:1:`},
	{name: "trailing backslash", in: `A="x\"` + "\n", err: `test.env:1: config: bad env file syntax: A: no closing "`},
	{name: "unknown escape", in: `A="\t"` + "\n", err: `test.env:1: config: bad env file syntax: A: unknown escape`},
	{name: "text after quote", in: "A='x'y\n", err: "test.env:1: config: bad env file syntax: A: unexpected text after the closing quote"},
	{name: "text after double quote", in: `A="x" y` + "\n", err: "unexpected text after the closing quote"},
	{name: "longest line", in: "A=" + strings.Repeat("x", maxEnvLine-2) + "\r\n", want: map[string]string{"A": strings.Repeat("x", maxEnvLine-2)}},
	{name: "longest line at end", in: "A=" + strings.Repeat("x", maxEnvLine-2), want: map[string]string{"A": strings.Repeat("x", maxEnvLine-2)}},
	{name: "line one too long", in: "A=" + strings.Repeat("x", maxEnvLine-1) + "\n", err: "test.env:1: config: bad env file syntax: line longer than"},
	{name: "long line", in: "A=" + strings.Repeat("x", maxEnvLine) + "\n", err: "test.env:1: config: bad env file syntax: line longer than"},
	{name: "long line later", in: "A=1\n\nB=" + strings.Repeat("x", maxEnvLine) + "\n", err: "test.env:3:"},
}

func TestParseEnv(t *testing.T) {
	for _, tt := range parseEnvTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEnv(strings.NewReader(tt.in), "test.env")
			if tt.err != "" {
				if err == nil {
					t.Fatalf("ParseEnv = %q, want error containing %q", got, tt.err)
				}
				if !errors.Is(err, ErrSyntax) {
					t.Errorf("error %v does not wrap ErrSyntax", err)
				}
				if !strings.Contains(err.Error(), tt.err) {
					t.Errorf("error %q does not contain %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseEnv: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseEnv = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestParseEnvErrorHidesLine checks that a syntax error does not quote the
// line, which may hold a secret.
func TestParseEnvErrorHidesLine(t *testing.T) {
	for _, in := range []string{
		"JWT_SECRET 'hunter2'\n",
		"JWT_SECRET='hunter2\n",
		"JWT_SECRET=\"hunter2\\q\"\n",
		"JWT_SECRET='hunter2'hunter2\n",
	} {
		_, err := ParseEnv(strings.NewReader(in), "x.env")
		if err == nil {
			t.Fatalf("ParseEnv(%q) succeeded", in)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error shows the line: %v", err)
		}
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReadEnvFile(t *testing.T) {
	path := writeFile(t, "rtmp.env", "# settings\r\nexport RTMP_PORT=1936\r\nJWT_SECRET='a b'\r\n")
	got, err := ReadEnvFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"RTMP_PORT": "1936", "JWT_SECRET": "a b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ReadEnvFile = %q, want %q", got, want)
	}

	bad := writeFile(t, "bad.env", "A=1\n\nnot a line\n")
	_, err = ReadEnvFile(bad)
	if err == nil || !strings.HasPrefix(err.Error(), bad+":3: ") {
		t.Errorf("error %v does not start with %s:3:", err, bad)
	}

	_, err = ReadEnvFile(filepath.Join(t.TempDir(), "missing.env"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
}

func TestLoadPrecedence(t *testing.T) {
	path := writeFile(t, "rtmp.env", strings.Join([]string{
		"RTMP_PORT=2000",
		"SSL_PORT=2443",
		"LOG_DEBUG=YES",
		"RTMP_HOST=from-file",
		"GOP_CACHE_SIZE_MB=",
	}, "\n"))
	c, warnings, err := Load(path, true, env(map[string]string{
		"RTMP_PORT":         "3000",      // overrides the file
		"RTMP_HOST":         "",          // empty: the file's value stays
		"GOP_CACHE_SIZE_MB": "7",         // empty in the file
		"REDIS_CHANNEL":     "from-env",  // not in the file
		"UNRELATED":         "whatever",  // not ours, not warned about
		"LOG_DEBUG":         "  ",        // blank: the file's value stays
		"ID_MAX_LENGTH":     " 64 ",      // trimmed
		"SSL_CERT":          "/cert.pem", // with the file's nothing for SSL_KEY...
		"SSL_KEY":           "/key.pem",  // ...both from the environment
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %q", warnings)
	}
	want := Default()
	want.RTMPPort = 3000
	want.SSLPort = 2443
	want.LogDebug = true
	want.RTMPHost = "from-file"
	want.GOPCacheSizeMB = 7
	want.Redis.Channel = "from-env"
	want.IDMaxLength = 64
	want.SSLCert, want.SSLKey = "/cert.pem", "/key.pem"
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load =\n%+v\nwant\n%+v", c, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.env")
	environ := env(map[string]string{"RTMP_PORT": "1937"})

	c, warnings, err := Load(missing, false, environ)
	if err != nil {
		t.Fatalf("missing optional file: %v", err)
	}
	if c.RTMPPort != 1937 || len(warnings) != 0 {
		t.Errorf("got port %d, warnings %q", c.RTMPPort, warnings)
	}

	_, _, err = Load(missing, true, environ)
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing required file: %v", err)
	}

	c, _, err = Load("", false, nil)
	if err != nil || !reflect.DeepEqual(c, Default()) {
		t.Errorf("no file, no environment: %+v, %v", c, err)
	}
}

func TestLoadErrors(t *testing.T) {
	// A syntax error is reported even for an optional file.
	bad := writeFile(t, "bad.env", "RTMP_PORT=1\nJWT_SECRET='x\n")
	if _, _, err := Load(bad, false, nil); err == nil || !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), bad+":2:") {
		t.Errorf("syntax error: %v", err)
	}

	// So is an unreadable one: a directory is not a file.
	if _, _, err := Load(t.TempDir(), false, nil); err == nil {
		t.Error("reading a directory succeeded")
	}

	// Bad values in the file are reported like bad values in the environment.
	path := writeFile(t, "values.env", "RTMP_PORT=abc\nLOG_DEBUG=maybe\n")
	_, _, err := Load(path, true, nil)
	if err == nil || !errors.Is(err, ErrInvalid) ||
		!strings.Contains(err.Error(), `RTMP_PORT: "abc"`) || !strings.Contains(err.Error(), `LOG_DEBUG: "maybe"`) {
		t.Errorf("bad values: %v", err)
	}

	// ...and the environment can fix them.
	if _, _, err := Load(path, true, env(map[string]string{"RTMP_PORT": "1935", "LOG_DEBUG": "no"})); err != nil {
		t.Errorf("environment overriding bad file values: %v", err)
	}
}

func TestLoadWarnsUnknownVariables(t *testing.T) {
	path := writeFile(t, "rtmp.env", "RTMP_PROT=1936\nlog_debug=YES\nREDIS_HOTS=x\nSOMETHING_ELSE=1\nRTMP_PORT=1937\n")
	c, warnings, err := Load(path, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.RTMPPort != 1937 {
		t.Errorf("RTMPPort = %d", c.RTMPPort)
	}
	want := []string{
		path + ": unknown variable REDIS_HOTS, ignored (did you mean REDIS_HOST?)",
		path + ": unknown variable RTMP_PROT, ignored (did you mean RTMP_PORT?)",
		path + ": unknown variable SOMETHING_ELSE, ignored",
		path + ": unknown variable log_debug, ignored (did you mean LOG_DEBUG?)",
	}
	if !reflect.DeepEqual(warnings, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warnings, "\n"), strings.Join(want, "\n"))
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "ABC", 3},
		{"ABC", "", 3},
		{"RTMP_PORT", "RTMP_PORT", 0},
		{"RTMP_PROT", "RTMP_PORT", 1},
		{"RTMP_POR", "RTMP_PORT", 1},
		{"RTMPPORT", "RTMP_PORT", 1},
		{"RTMP_PORTT", "RTMP_PORT", 1},
		{"RTMP_PIRT", "RTMP_PORT", 1},
		{"SSL_PORT", "RTMP_PORT", 4},
		{"CA", "ABC", 3},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// shippedEnvFile is the example configuration installed with the server's
// documentation (/usr/share/doc/rtmp-server/rtmp-server.env.example).
const shippedEnvFile = "../../etc/rtmp-server.env.example"

// shippedConffile is the /etc/rtmp-server.env the packages install: a
// conffile, which must not change between releases (dpkg would ask about
// an edited copy and stop an unattended upgrade).
const shippedConffile = "../../etc/rtmp-server.env"

// TestShippedConffileNeedNotChange checks etc/rtmp-server.env: it sets
// nothing, and it names no variable, so that documenting a new variable
// (in the example and the man page) never changes it.
func TestShippedConffileNeedNotChange(t *testing.T) {
	vars, err := ReadEnvFile(shippedConffile)
	if err != nil {
		t.Fatal(err)
	}
	if len(vars) != 0 {
		t.Errorf("%s sets %q; it should set nothing", shippedConffile, vars)
	}
	text, err := os.ReadFile(shippedConffile)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range Variables() {
		if strings.Contains(string(text), v.Name) {
			t.Errorf("%s names %s: list variables in %s and the man page instead", shippedConffile, v.Name, shippedEnvFile)
		}
	}
}

// TestShippedEnvFile checks etc/rtmp-server.env.example: as shipped it gives
// the defaults; it shows every variable, commented out, with its default;
// and uncommenting every setting still gives the defaults.
func TestShippedEnvFile(t *testing.T) {
	vars, err := ReadEnvFile(shippedEnvFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(vars) != 0 {
		t.Errorf("the shipped file sets %q; every setting should be commented out", vars)
	}
	c, warnings, err := Load(shippedEnvFile, true, nil)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("Load: %v, warnings %q", err, warnings)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("the shipped file gives\n%+v\nwant Default()\n%+v", c, Default())
	}

	text, err := os.ReadFile(shippedEnvFile)
	if err != nil {
		t.Fatal(err)
	}
	setting := regexp.MustCompile(`(?m)^# ([A-Z][A-Z0-9_]*=.*)$`)
	var uncommented strings.Builder
	shown := map[string]string{}
	for _, m := range setting.FindAllStringSubmatch(string(text), -1) {
		uncommented.WriteString(m[1] + "\n")
		name, value, _ := strings.Cut(m[1], "=")
		if _, dup := shown[name]; dup {
			t.Errorf("%s is shown twice", name)
		}
		shown[name] = value
	}
	for _, v := range Variables() {
		value, ok := shown[v.Name]
		if !ok {
			t.Errorf("%s is not in %s", v.Name, shippedEnvFile)
			continue
		}
		if value != v.Default {
			t.Errorf("%s is shown as %q, its default is %q", v.Name, value, v.Default)
		}
	}
	for name := range shown {
		if _, ok := lookupVariable(name); !ok {
			t.Errorf("%s in %s is not a variable the server reads", name, shippedEnvFile)
		}
	}

	vars, err = ParseEnv(strings.NewReader(uncommented.String()), "uncommented")
	if err != nil {
		t.Fatal(err)
	}
	c, err = Parse(env(vars))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("the uncommented file gives\n%+v\nwant Default()\n%+v", c, Default())
	}
}

// TestParseEnvReportsEveryBadLine checks that one error per bad line comes
// back, each naming its line, with the variables of the good lines.
func TestParseEnvReportsEveryBadLine(t *testing.T) {
	tests := []struct {
		name string
		in   string
		errs []string // one per bad line, in order
		want map[string]string
	}{
		{
			name: "two bad lines",
			in:   "A=1\nB='x\nC=3\nD\n",
			errs: []string{"test.env:2: config: bad env file syntax: B: no closing '", "test.env:4: config: bad env file syntax: want KEY=VALUE"},
			want: map[string]string{"A": "1", "C": "3"},
		},
		{
			name: "every kind",
			in:   "1A=x\nB=\"\\t\"\nC='x'y\nE=" + strings.Repeat("x", maxEnvLine-1) + "\nF=6\n",
			errs: []string{"test.env:1: config: bad env file syntax: bad variable name", "test.env:2: config: bad env file syntax: B: unknown escape",
				"test.env:3: config: bad env file syntax: C: unexpected text", "test.env:4: config: bad env file syntax: line longer than"},
			want: map[string]string{"F": "6"},
		},
		{
			name: "a line too long to read past",
			in:   "A='x\nE=" + strings.Repeat("x", 2*maxEnvLine) + "\nF=6\n",
			errs: []string{"test.env:1: config: bad env file syntax: A: no closing '", "test.env:2: config: bad env file syntax: line longer than 65536 bytes; the lines after it were not read"},
			want: map[string]string{},
		},
		{
			name: "a later good line of a bad key",
			in:   "A='x\nA=2\n",
			errs: []string{"test.env:1: config: bad env file syntax: A: no closing '"},
			want: map[string]string{"A": "2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEnv(strings.NewReader(tt.in), "test.env")
			if err == nil {
				t.Fatalf("ParseEnv = %q, want errors", got)
			}
			if !errors.Is(err, ErrSyntax) {
				t.Errorf("error %v does not wrap ErrSyntax", err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.errs) {
				t.Fatalf("%d errors, want %d:\n%v", len(lines), len(tt.errs), err)
			}
			for i, want := range tt.errs {
				if !strings.HasPrefix(lines[i], want) {
					t.Errorf("error %d = %q, want it to start with %q", i+1, lines[i], want)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("variables = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestLoadReportsEveryProblem checks that Load reports the file's syntax
// errors and the bad values together.
func TestLoadReportsEveryProblem(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  map[string]string
		want []string // every line of the error, in order
	}{
		{
			name: "syntax errors and bad values",
			file: "RTMP_PORT=abc\nJWT_SECRET='x\nLOG_DEBUG=maybe\nSSL_PORT\n",
			want: []string{
				"FILE:2: config: bad env file syntax: JWT_SECRET: no closing ' on this line",
				"FILE:4: config: bad env file syntax: want KEY=VALUE",
				`RTMP_PORT: "abc" is not`,
				`LOG_DEBUG: "maybe" is not valid`,
			},
		},
		{
			name: "bad value in the environment",
			file: "B='x\n",
			env:  map[string]string{"MAX_CONNECTIONS": "0"},
			want: []string{
				"FILE:1: config: bad env file syntax: B: no closing '",
				`MAX_CONNECTIONS: "0" is not valid`,
			},
		},
		{
			name: "no error that follows from an unreadable line",
			file: "CALLBACK_URL=http://127.0.0.1/\nJWT_SECRET=\"x\\q\"\n",
			want: []string{"FILE:2: config: bad env file syntax: JWT_SECRET: unknown escape"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "rtmp.env", tt.file)
			_, _, err := Load(path, true, env(tt.env))
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if !errors.Is(err, ErrSyntax) {
				t.Errorf("error does not wrap ErrSyntax: %v", err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("%d errors, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for i, want := range tt.want {
				if want = strings.ReplaceAll(want, "FILE", path); !strings.HasPrefix(lines[i], want) {
					t.Errorf("error %d = %q, want it to start with %q", i+1, lines[i], want)
				}
			}
		})
	}
}
