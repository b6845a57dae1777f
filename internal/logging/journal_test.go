package logging

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
)

// sentEntry is one call of the injected send function.
type sentEntry struct {
	msg    string
	pri    journal.Priority
	fields map[string]string
}

// recorder is an injectable send function that keeps what it was given.
type recorder struct {
	mu      sync.Mutex
	entries []sentEntry // guarded by mu
	err     error       // returned by send
}

func (r *recorder) send(msg string, pri journal.Priority, fields map[string]string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries = append(r.entries, sentEntry{msg, pri, maps.Clone(fields)})
	return r.err
}

func (r *recorder) only(t *testing.T) sentEntry {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.entries) != 1 {
		t.Fatalf("sent %d entries, want 1: %+v", len(r.entries), r.entries)
	}
	return r.entries[0]
}

type logValuer string

func (v logValuer) LogValue() slog.Value { return slog.StringValue("resolved-" + string(v)) }

func TestJournalHandlerFields(t *testing.T) {
	when := time.Date(2024, 5, 6, 7, 8, 9, 10, time.UTC)
	tests := []struct {
		name       string
		log        func(*slog.Logger)
		wantMsg    string
		wantFields map[string]string // besides SYSLOG_IDENTIFIER
	}{
		{
			name:       "message only",
			log:        func(l *slog.Logger) { l.Info("server started") },
			wantMsg:    "server started",
			wantFields: map[string]string{},
		},
		{
			name: "well-known keys",
			log: func(l *slog.Logger) {
				l.Info("publish", "session", "s1", "channel", "live/cam", "client_ip", "192.0.2.7", "stream_id", 1, "event", "publish_start")
			},
			wantMsg: "publish session=s1 channel=live/cam client_ip=192.0.2.7 stream_id=1 event=publish_start",
			wantFields: map[string]string{
				"SESSION_ID": "s1", "CHANNEL": "live/cam", "CLIENT_IP": "192.0.2.7", "STREAM_ID": "1", "EVENT": "publish_start",
			},
		},
		{
			name: "other keys are sanitised",
			log: func(l *slog.Logger) {
				l.Info("m", "bytes-in", 42, "Peer.Addr", "x", "__private", true, "9lives", 9, "été", "summer")
			},
			wantMsg:    "m bytes-in=42 Peer.Addr=x __private=true 9lives=9 été=summer",
			wantFields: map[string]string{"BYTES_IN": "42", "PEER_ADDR": "x", "PRIVATE": "true", "ATTR_9LIVES": "9", "T_": "summer"},
		},
		{
			name:       "reserved names",
			log:        func(l *slog.Logger) { l.Info("m", "message", "a", "priority", "b", "syslog_identifier", "c", "_", "d") },
			wantMsg:    "m message=a priority=b syslog_identifier=c _=d",
			wantFields: map[string]string{"ATTR_MESSAGE": "a", "ATTR_PRIORITY": "b", "ATTR_SYSLOG_IDENTIFIER": "c", "ATTR": "d"},
		},
		{
			name:       "long name",
			log:        func(l *slog.Logger) { l.Info("m", strings.Repeat("k", 100), 1) },
			wantMsg:    "m " + strings.Repeat("k", 100) + "=1",
			wantFields: map[string]string{strings.Repeat("K", 64): "1"},
		},
		{
			name: "values are quoted in the message only",
			log: func(l *slog.Logger) {
				l.Info("m", "reason", "bad stream key", "empty", "", "eq", "a=b", "nl", "x\ny", "err", errors.New("boom"))
			},
			wantMsg:    `m reason="bad stream key" empty="" eq="a=b" nl="x\ny" err=boom`,
			wantFields: map[string]string{"REASON": "bad stream key", "EMPTY": "", "EQ": "a=b", "NL": "x\ny", "ERR": "boom"},
		},
		{
			name: "kinds",
			log: func(l *slog.Logger) {
				l.Info("m", "d", 1500*time.Millisecond, "t", when, "f", 0.5, "b", false, "v", logValuer("x"))
			},
			wantMsg:    "m d=1.5s t=2024-05-06T07:08:09.00000001Z f=0.5 b=false v=resolved-x",
			wantFields: map[string]string{"D": "1.5s", "T": "2024-05-06T07:08:09.00000001Z", "F": "0.5", "B": "false", "V": "resolved-x"},
		},
		{
			name: "with attrs",
			log: func(l *slog.Logger) {
				l.With("session", "s9", "client_ip", "198.51.100.1").Warn("slow player", "dropped", 3)
			},
			wantMsg:    "slow player session=s9 client_ip=198.51.100.1 dropped=3",
			wantFields: map[string]string{"SESSION_ID": "s9", "CLIENT_IP": "198.51.100.1", "DROPPED": "3"},
		},
		{
			name: "groups prefix field names",
			log: func(l *slog.Logger) {
				l.WithGroup("hub").With("channel", "live").WithGroup("queue").Info("drop", "len", 64, slog.Group("peer", "addr", "x"))
			},
			wantMsg:    "drop hub.channel=live hub.queue.len=64 hub.queue.peer.addr=x",
			wantFields: map[string]string{"HUB_CHANNEL": "live", "HUB_QUEUE_LEN": "64", "HUB_QUEUE_PEER_ADDR": "x"},
		},
		{
			name:       "group attr at top level",
			log:        func(l *slog.Logger) { l.Info("m", slog.Group("tls", "version", "1.3"), "session", "s") },
			wantMsg:    "m tls.version=1.3 session=s",
			wantFields: map[string]string{"TLS_VERSION": "1.3", "SESSION_ID": "s"},
		},
		{
			name: "empty attrs and groups are dropped, empty group keys inlined",
			log: func(l *slog.Logger) {
				l.WithGroup("g").Info("m", slog.Attr{}, slog.Group("empty"), slog.Group("", "k", "v"))
			},
			wantMsg:    "m g.k=v",
			wantFields: map[string]string{"G_K": "v"},
		},
		{
			name:       "group without attrs is omitted",
			log:        func(l *slog.Logger) { l.With("a", 1).WithGroup("unused").Info("m") },
			wantMsg:    "m a=1",
			wantFields: map[string]string{"A": "1"},
		},
		{
			name:       "later value wins",
			log:        func(l *slog.Logger) { l.With("channel", "old").Info("m", "channel", "new") },
			wantMsg:    "m channel=old channel=new",
			wantFields: map[string]string{"CHANNEL": "new"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			tt.log(slog.New(NewJournalHandler(slog.LevelDebug, rec.send)))
			got := rec.only(t)
			if got.msg != tt.wantMsg {
				t.Errorf("MESSAGE = %q\nwant      %q", got.msg, tt.wantMsg)
			}
			want := maps.Clone(tt.wantFields)
			want["SYSLOG_IDENTIFIER"] = "rtmp-server"
			if !maps.Equal(got.fields, want) {
				t.Errorf("fields = %v\nwant     %v", got.fields, want)
			}
			for name := range got.fields {
				if err := validFieldName(name); err != nil {
					t.Errorf("field %q: %v", name, err)
				}
			}
		})
	}
}

// validFieldName applies journald's rules for field names.
func validFieldName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("length %d", len(name))
	}
	if name[0] == '_' || (name[0] >= '0' && name[0] <= '9') {
		return errors.New("bad first character")
	}
	for _, r := range name {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return fmt.Errorf("character %q", r)
		}
	}
	return nil
}

func TestJournalHandlerPriority(t *testing.T) {
	tests := []struct {
		level slog.Level
		want  journal.Priority
	}{
		{slog.LevelDebug, 7},
		{slog.LevelDebug + 2, 7},
		{slog.LevelInfo, 6},
		{slog.LevelInfo + 2, 6},
		{slog.LevelWarn, 4},
		{slog.LevelError, 3},
		{slog.LevelError + 4, 3},
	}
	for _, tt := range tests {
		t.Run(tt.level.String(), func(t *testing.T) {
			rec := &recorder{}
			slog.New(NewJournalHandler(slog.LevelDebug, rec.send)).Log(context.Background(), tt.level, "m")
			if got := rec.only(t).pri; got != tt.want {
				t.Errorf("PRIORITY = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestJournalHandlerLevel(t *testing.T) {
	var level slog.LevelVar
	rec := &recorder{}
	logger := slog.New(NewJournalHandler(&level, rec.send))
	logger.Debug("hidden")
	level.Set(slog.LevelDebug) // as a reload with LOG_DEBUG=1 does
	logger.Debug("shown")
	if got := rec.only(t).msg; got != "shown" {
		t.Errorf("sent %q, want only the message logged after the level changed", got)
	}

	rec = &recorder{}
	slog.New(NewJournalHandler(nil, rec.send)).Debug("hidden")
	slog.New(NewJournalHandler(nil, rec.send)).Info("default level is info")
	rec.only(t)
}

func TestJournalHandlerSendError(t *testing.T) {
	rec := &recorder{err: errors.New("journal gone")}
	h := NewJournalHandler(nil, rec.send)
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "m", 0)
	if err := h.Handle(context.Background(), r); !errors.Is(err, rec.err) {
		t.Errorf("Handle = %v, want the send error", err)
	}
}

func TestJournalHandlerConcurrent(t *testing.T) {
	rec := &recorder{}
	logger := slog.New(NewJournalHandler(nil, rec.send)).With("channel", "live")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			l := logger.With("session", i)
			for j := range 50 {
				l.Info("m", "n", j)
			}
		})
	}
	wg.Wait()
	if len(rec.entries) != 8*50 {
		t.Fatalf("sent %d entries, want %d", len(rec.entries), 8*50)
	}
	for _, e := range rec.entries {
		if e.fields["CHANNEL"] != "live" || e.fields["SESSION_ID"] == "" {
			t.Fatalf("entry lost its attributes: %+v", e)
		}
	}
}
