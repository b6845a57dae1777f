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

func TestConfigLogValue(t *testing.T) {
	c, err := Parse(env(map[string]string{
		"CALLBACK_URL": "https://user:hunter2@auth.example.com/",
		"JWT_SECRET":   jwtSecret,
		"RTMP_PORT":    "1936",
	}))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "config", c)
	var line struct {
		Config map[string]any `json:"config"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v in %s", err, buf.String())
	}
	want := map[string]any{
		"rtmp_port":           1936.0,
		"jwt_secret":          "[redacted]",
		"callback_url":        "https://user:xxxxx@auth.example.com/",
		"rtmp_play_whitelist": "*",
		"log_requests":        true,
	}
	for k, v := range want {
		if line.Config[k] != v {
			t.Errorf("config.%s = %v, want %v", k, line.Config[k], v)
		}
	}
	redis, _ := line.Config["redis"].(map[string]any)
	if redis["redis_password"] != "" || redis["redis_host"] != "127.0.0.1" {
		t.Errorf("config.redis = %v", redis)
	}
	for _, v := range Variables() {
		key := strings.ToLower(v.Name)
		if v.Name == "PLAY_ALLOWED_FROM" {
			continue // logged as rtmp_play_whitelist
		}
		if _, ok := line.Config[key]; !ok {
			if _, ok := redis[key]; !ok {
				t.Errorf("LogValue has no %s", key)
			}
		}
	}
}
