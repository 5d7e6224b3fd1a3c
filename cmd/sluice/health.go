package main

import (
	"net/url"
	"sync/atomic"
)

// healthy answers /healthz: true between startup and shutdown.
var healthy atomic.Bool

// healthFn, when set, must also answer true for /healthz to be 200 (a
// meta replica is healthy while it leads; a standby answers 503).
var healthFn atomic.Pointer[func() bool]

func isHealthy() bool {
	if !healthy.Load() {
		return false
	}
	if f := healthFn.Load(); f != nil {
		return (*f)()
	}
	return true
}

func parseURL(s string) (*url.URL, error) { return url.Parse(s) }
