package main

import (
	"context"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"sluice.dev/meta/console"
)

// The web console (issue 16; meta/console): `sluice meta` and the
// playground serve it under /console/ on their HTTP listener.

// consoleHandler, when set, serves /console/ (httpHandler).
var consoleHandler atomic.Pointer[http.Handler]

func serveConsole(w http.ResponseWriter, r *http.Request) {
	h := consoleHandler.Load()
	if h == nil {
		http.Error(w, "no web console in this process: it runs in sluice meta and the playground", http.StatusNotFound)
		return
	}
	(*h).ServeHTTP(w, r)
}

func registerConsoleFlags(fs *flag.FlagSet) *time.Duration {
	return fs.Duration("console-sample-interval", 10*time.Second, "how often the web console samples throughput and lag for its charts of the last hour (kept in memory only)")
}

// startConsole samples until ctx ends and serves the console on every
// HTTP listener this process starts from now on.
func startConsole(ctx context.Context, cfg console.Config, log *slog.Logger) {
	cfg.Logger = log
	c := console.New(cfg)
	go c.Run(ctx)
	h := c.Handler()
	consoleHandler.Store(&h)
}

// loopbackAddr reports whether addr's host is a loopback address (or
// localhost), where the playground serves its console without a token.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
