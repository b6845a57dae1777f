// Command man writes the rtmp-server(8) manual page. The ENVIRONMENT
// section comes from config.Variables, so the page lists exactly the
// variables the server reads, with their defaults.
//
//	go run ./packaging/man                      # roff on stdout
//	go run ./packaging/man -o rtmp-server.8.gz  # gzip-compressed, for packages
//
// The output depends only on the source and on -version, so two builds of
// one version give identical packages.
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rtmp-server/rtmp-server/internal/config"
)

func main() {
	out := flag.String("o", "", "write the page to `FILE` instead of stdout; a name ending in .gz is gzip-compressed")
	version := flag.String("version", "", "version shown in the page footer")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "man: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	if err := run(*out, *version); err != nil {
		fmt.Fprintln(os.Stderr, "man:", err)
		os.Exit(1)
	}
}

func run(out, version string) error {
	var page bytes.Buffer
	writePage(&page, version, config.Variables())
	if out == "" {
		_, err := os.Stdout.Write(page.Bytes())
		return err
	}
	data := page.Bytes()
	if strings.HasSuffix(out, ".gz") {
		var err error
		if data, err = compress(data); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, data, 0o644)
}

// compress gzips data at the best ratio with an empty header (no name, no
// time), as Debian's policy for manual pages asks.
func compress(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// escape makes s safe as roff text: backslashes and hyphens are escaped,
// and a line may not start with a control character.
func escape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

func writePage(w io.Writer, version string, vars []config.Variable) {
	footer := "rtmp-server"
	if version != "" {
		footer += " " + version
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }

	p(`.TH RTMP\-SERVER 8 "" "%s" "System Administration"`, escape(footer))
	p(".SH NAME")
	p(`rtmp\-server \- live\-streaming RTMP ingest server`)
	p(".SH SYNOPSIS")
	p(`.B rtmp\-server`)
	p(`.RB [ \-\-config `)
	p(`.IR path ]`)
	p(`.RB [ \-\-check\-config ]`)
	p(`.RB [ \-\-version ]`)
	p(`.RB [ \-\-pprof `)
	p(`.IR address ]`)
	p(".SH DESCRIPTION")
	p(`.B rtmp\-server`)
	p(`accepts live streams from RTMP encoders (OBS, ffmpeg, hardware encoders) at`)
	p(`.BI rtmp:// host / channel / key`)
	p(`and relays each stream to the players that open the same URL.`)
	p(`Publishing can be authorised by a callback server, and streams can be`)
	p(`closed through Redis Pub/Sub.`)
	p(".PP")
	p(`It is normally run by systemd as`)
	p(`.BR rtmp\-server.service ,`)
	p(`as the unprivileged user`)
	p(`.BR rtmp\-server .`)
	p(`Its listening sockets come from`)
	p(`.B rtmp\-server.socket`)
	p(`(RTMP, port 1935), which starts the service on the first connection,`)
	p(`and, once enabled, from`)
	p(`.B rtmp\-server\-rtmps.socket`)
	p(`(RTMPS, port 443).`)
	p(`Started by hand without systemd, it listens on`)
	p(`.B RTMP_PORT`)
	p(`itself.`)
	p(".SH OPTIONS")
	p(".TP")
	p(`.BI \-\-config " path"`)
	p(`Read the configuration from`)
	p(`.IR path .`)
	p(`Without this option the server reads`)
	p(`.I /etc/rtmp\-server.env`)
	p(`if it exists; a file named with`)
	p(`.B \-\-config`)
	p(`must exist.`)
	p(".TP")
	p(`.B \-\-check\-config`)
	p(`Validate the configuration, print a summary and exit.`)
	p(".TP")
	p(`.B \-\-version`)
	p(`Print the version and exit.`)
	p(".TP")
	p(`.BI \-\-pprof " address"`)
	p(`Serve the Go runtime's profiles (CPU, heap, goroutines) over HTTP at`)
	p(`.BI http:// address /debug/pprof/`)
	p(`for diagnosis. Off by default; use a loopback address such as`)
	p(`.BR 127.0.0.1:6060 .`)
	p(".SH ENVIRONMENT")
	p(`Every setting is an environment variable.`)
	p(`The server reads the configuration file, then its own environment, which`)
	p(`overrides the file. Lines of the file are`)
	p(`.IB NAME = value\fR;`)
	p(`a`)
	p(`.B #`)
	p(`starts a comment and values may be quoted.`)
	p(`An unset or empty variable takes its default.`)
	p(`Every value is checked at start\-up; a bad one stops the server with a`)
	p(`message that names the variable.`)
	p(`Yes/no settings take`)
	p(`.B YES`)
	p(`or`)
	p(`.BR NO .`)
	for _, v := range vars {
		p(".TP")
		if v.Default == "" {
			p(`.B %s`, escape(v.Name))
		} else {
			p(`.BR %s " (default: " "%s" )`, escape(v.Name), escape(v.Default))
		}
		p("%s", escape(v.Description))
		if v.Secret {
			p(`This value is a secret: it is never logged.`)
		}
	}
	p(".SH SIGNALS")
	p(".TP")
	p(`.B SIGHUP`)
	p(`Read the configuration file and the TLS certificates again`)
	p(`.RB ( "systemctl reload rtmp\-server" ).`)
	p(".TP")
	p(`.BR SIGTERM ", " SIGINT`)
	p(`Stop accepting connections, close the open ones and exit.`)
	p(".SH FILES")
	p(".TP")
	p(`.I /etc/rtmp\-server.env`)
	p(`The configuration file, owned by root and readable by group`)
	p(`.B rtmp\-server`)
	p(`only, since it may hold secrets.`)
	p(`As shipped it sets nothing, and the package never changes it, so an`)
	p(`upgrade keeps it without asking.`)
	p(".TP")
	p(`.I /usr/share/doc/rtmp\-server/rtmp\-server.env.example`)
	p(`Every variable, commented out, with its default: lines to copy into`)
	p(`.IR /etc/rtmp\-server.env .`)
	p(".TP")
	p(`.I /usr/lib/systemd/system/rtmp\-server.service`)
	p(".TQ")
	p(`.I /usr/lib/systemd/system/rtmp\-server.socket`)
	p(".TQ")
	p(`.I /usr/lib/systemd/system/rtmp\-server\-rtmps.socket`)
	p(`The systemd units. Local changes belong in a drop\-in:`)
	p(`.BR "systemctl edit rtmp\-server.service" .`)
	p(".SH EXIT STATUS")
	p(`0 after a clean stop or a successful check; 1 when the configuration is`)
	p(`invalid or the server fails; 2 on a usage error.`)
	p(".SH EXAMPLES")
	p(`Publish a file, then play it:`)
	p(".PP")
	p(".RS")
	p(".nf")
	p(`ffmpeg \-re \-i input.mp4 \-c copy \-f flv rtmp://127.0.0.1/live/my\-key`)
	p(`ffplay rtmp://127.0.0.1/live/my\-key`)
	p(".fi")
	p(".RE")
	p(".SH SEE ALSO")
	p(`.BR systemctl (1),`)
	p(`.BR journalctl (1),`)
	p(`.BR systemd.socket (5),`)
	p(`.BR sysusers.d (5)`)
}
