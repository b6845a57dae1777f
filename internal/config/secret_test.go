package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const (
	jwtSecret     = "jwt-s3cret-VALUE"
	redisPassword = "redis-PASSW0RD"
)

func TestSecretFormatting(t *testing.T) {
	s := Secret("hunter2")
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%T"} {
		if got := fmt.Sprintf(verb, s); strings.Contains(got, "hunter2") || strings.Contains(got, "68756e74657232") {
			t.Errorf("%s shows the secret: %s", verb, got)
		}
	}
	if got := fmt.Sprint(s); got != "[redacted]" {
		t.Errorf("Sprint = %q", got)
	}
	if got := fmt.Sprint(Secret("")); got != "" {
		t.Errorf("Sprint of empty = %q", got)
	}
	if s.Reveal() != "hunter2" {
		t.Errorf("Reveal() = %q", s.Reveal())
	}
	if s.GoString() != "[redacted]" || Secret("").GoString() != "" {
		t.Errorf("GoString() = %q", s.GoString())
	}
}

// TestSecretsNeverShown parses a configuration with both secrets and one
// with bad values around them, and looks for the secrets in every way the
// configuration or its errors could be printed or logged.
func TestSecretsNeverShown(t *testing.T) {
	c, err := Parse(env(map[string]string{
		"CALLBACK_URL":   "https://auth.example.com/",
		"JWT_SECRET":     jwtSecret,
		"REDIS_USE":      "YES",
		"REDIS_PASSWORD": redisPassword,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.JWTSecret.Reveal() != jwtSecret || c.Redis.Password.Reveal() != redisPassword {
		t.Fatal("secrets not parsed")
	}

	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%d", "%q"} {
		outputs = append(outputs, fmt.Sprintf(verb, c), fmt.Sprintf(verb, &c), fmt.Sprintf(verb, c.Redis))
	}
	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	} {
		var buf bytes.Buffer
		log := slog.New(h(&buf))
		log.Info("config", "config", c, "ptr", &c, "redis", c.Redis, "secret", c.JWTSecret)
		log.Info("attrs", slog.Any("config", c), slog.Any("password", c.Redis.Password))
		outputs = append(outputs, buf.String())
	}
	for _, v := range []any{c, &c, c.Redis} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		outputs = append(outputs, string(b))
	}

	// Errors about other values must not show the secrets either.
	_, err = Parse(env(map[string]string{
		"JWT_SECRET":     jwtSecret,
		"REDIS_PASSWORD": redisPassword,
		"RTMP_PORT":      "bad",
		"SSL_CERT":       "x",
	}))
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	outputs = append(outputs, err.Error())

	for _, out := range outputs {
		for _, secret := range []string{jwtSecret, redisPassword} {
			if strings.Contains(out, secret) {
				t.Errorf("output shows a secret:\n%s", out)
			}
		}
		if !strings.Contains(out, "[redacted]") && !strings.Contains(out, "RTMP_PORT") {
			t.Errorf("output shows no redacted secret:\n%s", out)
		}
	}
}

func TestConfigLogGroups(t *testing.T) {
	c, err := Parse(env(map[string]string{
		"CALLBACK_URL":   "https://user:hunter2@auth.example.com/",
		"JWT_SECRET":     jwtSecret,
		"REDIS_PASSWORD": redisPassword,
		"RTMP_PORT":      "1936",
	}))
	if err != nil {
		t.Fatal(err)
	}
	// One line per group, as the daemon logs them.
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	seen := map[string]string{} // key -> group
	for _, g := range c.LogGroups() {
		args := []any{"group", g.Name}
		for _, a := range g.Attrs {
			args = append(args, a)
			if other, dup := seen[a.Key]; dup {
				t.Errorf("%s is in groups %s and %s", a.Key, other, g.Name)
			}
			seen[a.Key] = g.Name
		}
		logger.Info("config", args...)
	}
	out := buf.String()
	for _, secret := range []string{jwtSecret, redisPassword, "hunter2"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log shows %q:\n%s", secret, out)
		}
	}
	const maxLine = 200 // the single line it replaces was about 1,100
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if len(line) > maxLine {
			t.Errorf("line of %d characters (want at most %d): %s", len(line), maxLine, line)
		}
	}
	for _, want := range []string{
		"group=rtmp rtmp_port=1936 ",
		"group=callback callback_url=https://user:xxxxx@auth.example.com/ jwt_secret=[redacted] ",
		"redis_password=[redacted] ",
		"group=play rtmp_play_whitelist=* ",
		"group=log log_requests=true ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	for _, v := range Variables() {
		key := strings.ToLower(v.Name)
		if v.Name == "PLAY_ALLOWED_FROM" {
			continue // logged as rtmp_play_whitelist
		}
		if _, ok := seen[key]; !ok {
			t.Errorf("LogGroups has no %s", key)
		}
	}
}

func TestConfigLogValue(t *testing.T) {
	c, err := Parse(env(map[string]string{
		"JWT_SECRET":     jwtSecret,
		"REDIS_PASSWORD": redisPassword,
		"RTMP_PORT":      "1936",
	}))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "config", c)
	var line struct {
		Config map[string]map[string]any `json:"config"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v in %s", err, buf.String())
	}
	if got := line.Config["rtmp"]["rtmp_port"]; got != 1936.0 {
		t.Errorf("config.rtmp.rtmp_port = %v", got)
	}
	if got := line.Config["callback"]["jwt_secret"]; got != "[redacted]" {
		t.Errorf("config.callback.jwt_secret = %v", got)
	}
	if got := line.Config["redis"]["redis_password"]; got != "[redacted]" {
		t.Errorf("config.redis.redis_password = %v", got)
	}
}
