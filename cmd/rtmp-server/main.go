// Command rtmp-server is a live-streaming RTMP ingest server.
//
//	rtmp-server [--config /etc/rtmp-server.env] [--check-config] [--version]
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/rtmp-server/rtmp-server/internal/daemon"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const defaultConfigPath = "/etc/rtmp-server.env"

func main() {
	configPath := flag.String("config", defaultConfigPath, "path of the environment file to read")
	check := flag.Bool("check-config", false, "validate the configuration and exit")
	showVersion := flag.Bool("version", false, "print the version and exit")
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
	if err := daemon.Run(opts); err != nil {
		fmt.Fprintln(os.Stderr, "rtmp-server:", err)
		os.Exit(1)
	}
}
