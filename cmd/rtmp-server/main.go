// Command rtmp-server is a live-streaming RTMP ingest server.
//
//	rtmp-server [--config /etc/rtmp-server.env] [--check-config] [--version] [--pprof ADDR]
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/daemon"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const defaultConfigPath = "/etc/rtmp-server.env"

func main() {
	configPath := flag.String("config", defaultConfigPath, "path of the environment file to read")
	check := flag.Bool("check-config", false, "validate the configuration and exit")
	showVersion := flag.Bool("version", false, "print the version and exit")
	pprofAddr := flag.String("pprof", "", "serve Go profiles (net/http/pprof) on this address, e.g. 127.0.0.1:6060; for diagnosis only")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "rtmp-server: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	if *showVersion {
		fmt.Println("rtmp-server", version)
		return
	}
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })

	opts := daemon.Options{ConfigPath: *configPath, ConfigRequired: explicit, Version: version}
	if *check {
		if err := daemon.CheckConfig(opts, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "rtmp-server: invalid configuration:")
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if *pprofAddr != "" {
		if _, err := servePprof(*pprofAddr); err != nil {
			fmt.Fprintln(os.Stderr, "rtmp-server: --pprof:", err)
			os.Exit(2)
		}
	}
	if err := daemon.Run(opts); err != nil {
		fmt.Fprintln(os.Stderr, "rtmp-server:", err)
		os.Exit(1)
	}
}

// servePprof serves the runtime's profiles under /debug/pprof/ on addr. It
// is a diagnosis aid, off unless asked for: the profiles reveal internals,
// so addr should be a loopback address.
func servePprof(addr string) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	fmt.Fprintln(os.Stderr, "rtmp-server: profiles on http://"+ln.Addr().String()+"/debug/pprof/")
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr(), nil
}
