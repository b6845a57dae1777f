package admin

import (
	"encoding/json"
	"math"
	"net/http"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/hub"
)

// StreamsResponse is the body of GET /v1/streams.
type StreamsResponse struct {
	Time    time.Time `json:"time"`
	Streams []Stream  `json:"streams"`
}

// Stream is one channel in the API. It never carries a stream key.
type Stream struct {
	Channel   string     `json:"channel"`
	Published bool       `json:"published"`
	StreamID  string     `json:"stream_id,omitempty"`
	Publisher *Publisher `json:"publisher,omitempty"`
	StartedAt *time.Time `json:"started_at,omitempty"`
	// UptimeSeconds is how long the publication has been live.
	UptimeSeconds float64 `json:"uptime_seconds,omitempty"`

	Video *Track `json:"video,omitempty"`
	Audio *Track `json:"audio,omitempty"`

	BytesIn    uint64 `json:"bytes_in"`
	MessagesIn uint64 `json:"messages_in"`
	// AVDriftSeconds is the last video timestamp minus the last audio one.
	AVDriftSeconds      float64           `json:"av_drift_seconds"`
	TimestampAnomalies  TimestampCounters `json:"timestamp_anomalies"`
	GOPCacheBytes       int64             `json:"gop_cache_bytes"`
	GOPCachePackets     int               `json:"gop_cache_packets"`
	BitrateHistoryBPS   []float64         `json:"bitrate_history_bps"`
	MeasurementWindowMS int64             `json:"measurement_window_ms"`
	// Players are the connections playing the channel.
	Players []Player `json:"players"`
	// Forwards are the pushes of the publication to other servers.
	Forwards []Forward `json:"forwards"`
}

// Publisher is the publishing connection.
type Publisher struct {
	Address string `json:"address,omitempty"`
	Session uint64 `json:"session"`
	// FlashVer is what the encoder sent as flashVer in connect.
	FlashVer string `json:"flash_ver,omitempty"`
	// Encoder is the encoder named in the stream's metadata.
	Encoder string `json:"encoder,omitempty"`
}

// Track describes the audio or video of a publication. Measured figures
// cover the last 5 s; declared ones come from onMetaData.
type Track struct {
	// Codec is the FourCC (Enhanced RTMP, or the usual one of a classic codec).
	Codec string `json:"codec,omitempty"`
	// CodecID is the classic FLV codec ID or sound format (0 for Enhanced RTMP).
	CodecID    int     `json:"codec_id"`
	BitrateBPS float64 `json:"bitrate_bps"`
	BytesIn    uint64  `json:"bytes_in"`

	FrameRate               float64 `json:"frame_rate,omitempty"`
	KeyframeIntervalSeconds float64 `json:"keyframe_interval_seconds,omitempty"`
	Frames                  uint64  `json:"frames,omitempty"`
	Keyframes               uint64  `json:"keyframes,omitempty"`
	Width                   float64 `json:"width,omitempty"`
	Height                  float64 `json:"height,omitempty"`
	DeclaredFrameRate       float64 `json:"declared_frame_rate,omitempty"`
	DeclaredCodecID         string  `json:"declared_codec_id,omitempty"`
	DeclaredKbps            float64 `json:"declared_kbps,omitempty"`
}

// TimestampCounters counts timestamps that went backwards or jumped ahead
// by more than 3 s, on either track.
type TimestampCounters struct {
	Backwards uint64 `json:"backwards"`
	Jumps     uint64 `json:"jumps"`
}

// Player is one player of a channel.
type Player struct {
	Session    uint64    `json:"session"`
	Address    string    `json:"address,omitempty"`
	Since      time.Time `json:"since"`
	Playing    bool      `json:"playing"`
	BytesSent  uint64    `json:"bytes_sent"`
	QueueSkips uint64    `json:"queue_skips"`
}

func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}

func apiStream(s hub.StreamStats, forwards []Forward, now time.Time) Stream {
	out := Stream{
		Channel: s.Channel, Published: s.Published, StreamID: s.StreamID,
		BytesIn: s.BytesIn, MessagesIn: s.MessagesIn,
		AVDriftSeconds:      round(s.AVDrift.Seconds(), 3),
		TimestampAnomalies:  TimestampCounters{Backwards: s.TimestampsBackwards, Jumps: s.TimestampJumps},
		GOPCacheBytes:       s.GOPCacheBytes,
		GOPCachePackets:     s.GOPCachePackets,
		BitrateHistoryBPS:   s.BitrateHistory,
		MeasurementWindowMS: hub.StatsWindow.Milliseconds(),
		Players:             make([]Player, 0, len(s.Players)),
		Forwards:            forwards,
	}
	if out.Forwards == nil {
		out.Forwards = []Forward{}
	}
	if out.BitrateHistoryBPS == nil {
		out.BitrateHistoryBPS = []float64{}
	}
	if s.Published {
		started := s.Started.UTC()
		out.StartedAt = &started
		out.UptimeSeconds = round(now.Sub(s.Started).Seconds(), 1)
		out.Publisher = &Publisher{Session: s.SessionID, FlashVer: s.FlashVer}
		if s.PublisherAddr.IsValid() {
			out.Publisher.Address = s.PublisherAddr.String()
		}
		if s.Metadata != nil {
			out.Publisher.Encoder = s.Metadata.Encoder
		}
	}
	if s.VideoCodec != nil || (s.Metadata != nil && s.Metadata.Width > 0) {
		v := &Track{
			BitrateBPS: math.Round(s.VideoBitrate), BytesIn: s.VideoBytesIn,
			FrameRate: round(s.FrameRate, 2), KeyframeIntervalSeconds: round(s.KeyframeInterval.Seconds(), 3),
			Frames: s.VideoFrames, Keyframes: s.Keyframes,
		}
		if s.VideoCodec != nil {
			v.Codec, v.CodecID = s.VideoCodec.FourCC, s.VideoCodec.ID
		}
		if m := s.Metadata; m != nil {
			v.Width, v.Height, v.DeclaredFrameRate = m.Width, m.Height, m.FrameRate
			v.DeclaredCodecID, v.DeclaredKbps = m.VideoCodecID, m.VideoDataRate
		}
		out.Video = v
	}
	if s.AudioCodec != nil {
		a := &Track{Codec: s.AudioCodec.FourCC, CodecID: s.AudioCodec.ID, BitrateBPS: math.Round(s.AudioBitrate), BytesIn: s.AudioBytesIn}
		if m := s.Metadata; m != nil {
			a.DeclaredCodecID, a.DeclaredKbps = m.AudioCodecID, m.AudioDataRate
		}
		out.Audio = a
	}
	for _, p := range s.Players {
		if isForward(p.SessionID) {
			continue // listed under Forwards
		}
		pl := Player{Session: p.SessionID, Since: p.Since.UTC(), Playing: p.Playing, BytesSent: p.BytesSent, QueueSkips: p.Skips}
		if p.Addr.IsValid() {
			pl.Address = p.Addr.String()
		}
		out.Players = append(out.Players, pl)
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away
}

func (s *Server) streams(w http.ResponseWriter, _ *http.Request) {
	now := time.Now()
	all := s.Source.StreamStats()
	fwd := forwardsByChannel(s.Forwards, now)
	out := StreamsResponse{Time: now.UTC(), Streams: make([]Stream, 0, len(all))}
	for _, st := range all {
		out.Streams = append(out.Streams, apiStream(st, fwd[st.Channel], now))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	st, ok := s.Source.StreamStatsOf(r.PathValue("channel"))
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such channel"})
		return
	}
	now := time.Now()
	writeJSON(w, http.StatusOK, apiStream(st, forwardsByChannel(s.Forwards, now)[st.Channel], now))
}
