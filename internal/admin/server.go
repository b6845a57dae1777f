// Package admin is the monitoring listener: Prometheus metrics, a JSON
// streams API, liveness and readiness checks, and a status page. It reads
// the hub's snapshots when asked and never touches the media path.
//
// Stream keys are secrets: nothing here shows one. Streams are named by
// channel and stream ID.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("admin: server closed")

// Limits of the admin listener. Requests are small GETs from a scraper, a
// browser or the status command.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 10 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 60 * time.Second
	MaxHeaderBytes    = 8 << 10
	// MaxConnections bounds the open connections; more wait to be accepted.
	MaxConnections = 64
	// MaxRequests bounds the requests served at once; more get 503.
	MaxRequests = 8
	// healthTimeout bounds the liveness check.
	healthTimeout = 2 * time.Second
)

// Server serves the admin endpoints. Fill the fields, then call Serve.
type Server struct {
	// Source is the hub. Required.
	Source Source
	// Metrics is the registry /metrics serves; nil serves one made from Source.
	Metrics *Metrics
	// Forwards reports the forwards of the live streams, shown with each
	// stream in the streams API; nil shows none.
	Forwards func() []Forward
	// Healthy is the liveness check of /healthz; nil always passes.
	Healthy func(context.Context) error
	// Ready reports whether publishes are accepted, for /readyz; nil means yes.
	Ready func() bool
	// Token, when not empty, is required by every endpoint, the status
	// page included: "Authorization: Bearer TOKEN", as Prometheus and the
	// status command send it, or HTTP Basic authentication with TOKEN as
	// the password (any user name), which is how a browser asks for it.
	// It is compared in constant time, and never taken from the URL.
	Token string
	// Logger receives errors; nil discards them.
	Logger *slog.Logger

	once sync.Once
	srv  *http.Server
}

func (s *Server) init() {
	s.once.Do(func() {
		if s.Metrics == nil {
			s.Metrics = NewMetrics(s.Source)
		}
		log := s.Logger
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		s.srv = &http.Server{
			Handler:           s.Handler(),
			ReadHeaderTimeout: ReadHeaderTimeout,
			ReadTimeout:       ReadTimeout,
			WriteTimeout:      WriteTimeout,
			IdleTimeout:       IdleTimeout,
			MaxHeaderBytes:    MaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		}
	})
}

// Serve accepts connections on ln until Shutdown or Close, and returns
// ErrServerClosed then. ln is closed when Serve returns.
func (s *Server) Serve(ln net.Listener) error {
	s.init()
	err := s.srv.Serve(netutil.LimitListener(ln, MaxConnections))
	if errors.Is(err, http.ErrServerClosed) {
		return ErrServerClosed
	}
	return err
}

// Shutdown stops accepting and waits for requests in flight, or ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	return s.srv.Shutdown(ctx)
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error {
	s.init()
	return s.srv.Close()
}

// Handler returns the admin endpoints with the server's checks around them:
// token, no request bodies, bounded concurrency.
func (s *Server) Handler() http.Handler {
	if s.Metrics == nil {
		s.Metrics = NewMetrics(s.Source)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.Metrics.reg, promhttp.HandlerOpts{
		MaxRequestsInFlight: 2,
		Timeout:             WriteTimeout / 2,
	}))
	mux.HandleFunc("GET /v1/streams", s.streams)
	mux.HandleFunc("GET /v1/streams/{channel}", s.stream)
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /{$}", statusPage)
	return s.guard(mux)
}

func (s *Server) guard(next http.Handler) http.Handler {
	sem := make(chan struct{}, MaxRequests)
	want := sha256.Sum256([]byte(s.Token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if s.Token != "" && !authorized(r, want) {
			// Two challenges: Bearer for programs; Basic makes a browser
			// ask the person for the token.
			w.Header().Add("WWW-Authenticate", `Bearer realm="rtmp-server"`)
			w.Header().Add("WWW-Authenticate", `Basic realm="rtmp-server admin (user: any, password: ADMIN_TOKEN)", charset="UTF-8"`)
			http.Error(w, "401 unauthorized: send Authorization: Bearer ADMIN_TOKEN", http.StatusUnauthorized)
			return
		}
		switch {
		case r.ContentLength > 0:
			http.Error(w, "413 request bodies are not accepted", http.StatusRequestEntityTooLarge)
			return
		case r.ContentLength < 0 || len(r.TransferEncoding) > 0:
			http.Error(w, "400 request bodies are not accepted", http.StatusBadRequest)
			return
		}
		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
		default:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "503 too many requests at once", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authorized reports whether r carries the token whose SHA-256 is want, as
// a bearer token or as a Basic password. Hashing first makes the
// comparison constant-time whatever the lengths.
func authorized(r *http.Request, want [sha256.Size]byte) bool {
	auth := r.Header.Get("Authorization")
	var got string
	if scheme, rest, ok := strings.Cut(auth, " "); ok && strings.EqualFold(scheme, "Bearer") {
		got = rest
	} else if _, password, ok := r.BasicAuth(); ok {
		got = password
	} else {
		return false
	}
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(sum[:], want[:]) == 1
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if s.Healthy != nil {
		ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
		defer cancel()
		if err := s.Healthy(ctx); err != nil {
			http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if s.Ready != nil && !s.Ready() {
		http.Error(w, "not accepting publishes", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ready\n"))
}
