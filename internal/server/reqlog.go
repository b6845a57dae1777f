package server

import (
	"log/slog"
	"strings"
	"time"
)

// RequestLog returns an observer that logs the request events of
// connections (accepted, connect, publish, play, their refusals, ends and
// closes) to logger, one line each, while enabled reports true (the
// LogRequests option; checked per event, so a reload applies at once). A
// line carries the session, client_ip and, once connected, the channel; its
// message doubles as the "event" attribute (EVENT= in the journal), with
// spaces as underscores. Use it as Server.Observer, or with Observers to
// combine it with others.
func RequestLog(logger *slog.Logger, enabled func() bool) func(Event) {
	return func(ev Event) {
		if enabled != nil && !enabled() {
			return
		}
		msg, args := requestLine(ev)
		if msg == "" {
			return
		}
		log := logger.With("session", ev.Session, "client_ip", ev.ClientIP.String())
		if ev.Channel != "" {
			log = log.With("channel", ev.Channel)
		}
		log.Info(msg, append([]any{"event", strings.ReplaceAll(msg, " ", "_")}, args...)...)
	}
}

// requestLine is the log line of ev, or "" for an event without one.
func requestLine(ev Event) (msg string, args []any) {
	switch ev.Kind {
	case ConnAccepted:
		return "connection accepted", nil
	case ConnClosed:
		if ev.HandshakeFailed {
			return "connection closed", []any{"reason", "handshake failed"}
		}
		return "connection closed", []any{"reason", ev.Reason}
	case ConnectRefused:
		switch {
		case ev.Reason == reasonOverIPLimit:
			return "rejected", []any{"reason", ev.Reason, "limit", ev.Limit}
		case ev.Hint != "":
			return "rejected", []any{"reason", strings.TrimSuffix(ev.Reason, ": "+ev.Hint), "hint", ev.Hint,
				"app", ev.App, "app_hidden_bytes", ev.AppHiddenBytes}
		case ev.Reason == reasonInvalidChannel:
			return "rejected", []any{"reason", ev.Reason, "app", ev.App}
		}
		return "rejected", []any{"reason", ev.Reason}
	case Connected:
		return "connect", nil
	case PublishRefused:
		args = []any{"action", "publish", "reason", ev.Reason}
		if ev.Err != nil {
			args = append(args, "err", ev.Err)
		}
		if ev.Command != "" {
			args = append(args, "command", ev.Command)
		}
		if ev.StreamID != "" {
			args = append(args, "stream_id", ev.StreamID)
		}
		return "rejected", args
	case PublishAccepted:
		args = []any{"stream_id", ev.StreamID}
		if ev.ReplacedSession != 0 {
			args = append(args, "replaced_session", ev.ReplacedSession)
		}
		return "publish", args
	case StreamEnded:
		return "unpublish", []any{"stream_id", ev.StreamID, "reason", ev.Reason,
			"duration", ev.Duration.Round(time.Millisecond).String()}
	case PlayRefused:
		return "rejected", []any{"action", "play", "reason", ev.Reason}
	case PlayAccepted:
		if ev.Waiting {
			return "play", []any{"state", "waiting for publisher"}
		}
		return "play", []any{"state", "playing"}
	case PlayStopped:
		return "play stopped", nil
	case ReconnectRequested:
		return "reconnect requested", []any{"reason", ev.Reason}
	}
	return "", nil
}

// Observers returns an observer that passes each event to every one of
// obs in turn (nil ones are skipped), such as a RequestLog and a metrics
// observer; nil when there is none.
func Observers(obs ...func(Event)) func(Event) {
	var all []func(Event)
	for _, o := range obs {
		if o != nil {
			all = append(all, o)
		}
	}
	switch len(all) {
	case 0:
		return nil
	case 1:
		return all[0]
	}
	return func(ev Event) {
		for _, o := range all {
			o(ev)
		}
	}
}
