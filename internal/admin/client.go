package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// maxResponseBytes bounds the /v1/streams answer the status command reads.
const maxResponseBytes = 64 << 20

// ErrUnauthorized is returned by FetchStreams when the token is missing or wrong.
var ErrUnauthorized = errors.New("admin: the admin listener wants a valid ADMIN_TOKEN")

// BaseURL turns a listening address (as in ADMIN_ADDRESS) into the URL to
// reach it from this host: an unspecified host becomes loopback.
func BaseURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("admin address %q: want host:port: %w", addr, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// FetchStreams reads GET /v1/streams from the admin listener at base.
func FetchStreams(ctx context.Context, client *http.Client, base, token string) (StreamsResponse, error) {
	var out StreamsResponse
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/v1/streams", nil)
	if err != nil {
		return out, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	if err != nil {
		return out, err
	}
	defer res.Body.Close()
	switch {
	case res.StatusCode == http.StatusUnauthorized:
		return out, ErrUnauthorized
	case res.StatusCode != http.StatusOK:
		b, _ := io.ReadAll(io.LimitReader(res.Body, 200))
		return out, fmt.Errorf("admin: %s: %s", res.Status, strings.TrimSpace(string(b)))
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, maxResponseBytes)).Decode(&out); err != nil {
		return out, fmt.Errorf("admin: reading /v1/streams: %w", err)
	}
	return out, nil
}

// WriteTable prints the streams as a table, one line per channel.
func WriteTable(w io.Writer, resp StreamsResponse) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHANNEL\tSTREAM ID\tFROM\tUPTIME\tVIDEO\tKBIT/S\tFPS\tKEYINT\tAUDIO\tKBIT/S\tDRIFT\tANOMALIES\tPLAYERS\tFORWARDS")
	for _, s := range resp.Streams {
		if !s.Published {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t%d waiting\t-\n", terminalSafe(s.Channel), len(s.Players))
			continue
		}
		from := "-"
		if s.Publisher != nil && s.Publisher.Address != "" {
			from = s.Publisher.Address
		}
		video, vrate, fps, keyint := "-", "-", "-", "-"
		if v := s.Video; v != nil {
			video = orDash(v.Codec)
			if v.Width > 0 {
				video += fmt.Sprintf(" %gx%g", v.Width, v.Height)
			}
			vrate = fmt.Sprintf("%.0f", v.BitrateBPS/1000)
			fps = fmt.Sprintf("%.1f", v.FrameRate)
			if v.KeyframeIntervalSeconds > 0 {
				keyint = fmt.Sprintf("%.1fs", v.KeyframeIntervalSeconds)
			}
		}
		audio, arate := "-", "-"
		if a := s.Audio; a != nil {
			audio = orDash(a.Codec)
			arate = fmt.Sprintf("%.0f", a.BitrateBPS/1000)
		}
		uptime := (time.Duration(s.UptimeSeconds) * time.Second).String()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.3fs\t%d\t%d\t%s\n",
			terminalSafe(s.Channel), terminalSafe(orDash(s.StreamID)), from, uptime, video, vrate, fps, keyint, audio, arate,
			s.AVDriftSeconds, s.TimestampAnomalies.Backwards+s.TimestampAnomalies.Jumps, len(s.Players), forwardStates(s.Forwards))
	}
	return tw.Flush()
}

// forwardStates sums up a stream's forwards for a table cell: how many
// are in each state, as "2 live, 1 retrying".
func forwardStates(fs []Forward) string {
	if len(fs) == 0 {
		return "-"
	}
	count := make(map[string]int)
	var order []string
	for _, f := range fs {
		if count[f.State] == 0 {
			order = append(order, f.State)
		}
		count[f.State]++
	}
	slices.Sort(order)
	parts := make([]string, 0, len(order))
	for _, st := range order {
		parts = append(parts, fmt.Sprintf("%d %s", count[st], terminalSafe(st)))
	}
	return strings.Join(parts, ", ")
}

// terminalSafe bounds a name for a table cell and replaces what a terminal
// could take for a control sequence.
func terminalSafe(s string) string {
	const maxCell = 64
	if len(s) > maxCell {
		s = s[:maxCell]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '\t' || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
