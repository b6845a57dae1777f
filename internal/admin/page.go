package admin

import (
	_ "embed"
	"net/http"
)

// statusHTML is the status page: one self-contained file with no external
// assets. It carries no data; it reads /v1/streams with the credentials the
// browser was let in with (see Server.Token).
//
//go:embed status.html
var statusHTML []byte

func statusPage(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:")
	h.Set("X-Frame-Options", "DENY")
	_, _ = w.Write(statusHTML)
}
