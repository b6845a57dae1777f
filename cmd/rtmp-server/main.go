// Command rtmp-server is a live-streaming RTMP ingest server.
//
//	rtmp-server [--config /etc/rtmp-server.env] [--check-config] [--version] [--pprof ADDR]
//	rtmp-server status [--config /etc/rtmp-server.env] [--admin ADDR]
//	rtmp-server drain|undrain [--pid PID] [--unit rtmp-server.service]
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/admin"
	"github.com/rtmp-server/rtmp-server/internal/config"
	"github.com/rtmp-server/rtmp-server/internal/daemon"
)

// status prints the live streams, read from the admin listener: the
// address and token come from --admin and the env file (ADMIN_ADDRESS,
// ADMIN_TOKEN; the environment overrides the file). It returns the exit
// status.
func status(args []string) int {
	fs := flag.NewFlagSet("rtmp-server status", flag.ContinueOnError)
	configPath := fs.String("config", defaultConfigPath, "path of the environment file to read ADMIN_ADDRESS and ADMIN_TOKEN from")
	addr := fs.String("admin", "", "address of the admin listener, host:port (default: ADMIN_ADDRESS)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "rtmp-server status: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })
	cfg, _, err := config.Load(*configPath, explicit, os.LookupEnv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "rtmp-server status: reading %s: %v\n", *configPath, err)
		return 1
	}
	if *addr == "" {
		*addr = cfg.AdminAddress
	}
	if *addr == "" {
		fmt.Fprintln(os.Stderr, "rtmp-server status: the admin listener is off (ADMIN_ADDRESS is empty); give --admin host:port")
		return 1
	}
	base, err := admin.BaseURL(*addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtmp-server status:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := admin.FetchStreams(ctx, &http.Client{}, base, cfg.AdminToken.Reveal())
	if err != nil {
		fmt.Fprintf(os.Stderr, "rtmp-server status: %s: %v\n", base, err)
		return 1
	}
	if err := admin.WriteTable(os.Stdout, resp); err != nil {
		fmt.Fprintln(os.Stderr, "rtmp-server status:", err)
		return 1
	}
	return 0
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const defaultConfigPath = "/etc/rtmp-server.env"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "status" {
		os.Exit(status(os.Args[2:]))
	}
	if len(os.Args) > 1 && (os.Args[1] == "drain" || os.Args[1] == "undrain") {
		os.Exit(drain(os.Args[1], os.Args[2:]))
	}
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
