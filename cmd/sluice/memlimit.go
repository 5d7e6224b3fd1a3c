package main

import (
	"log/slog"

	"sluice.dev/internal/memlimit"
)

// applyMemoryLimit gives the Go runtime a soft memory limit from the
// container's (internal/memlimit) and logs what it chose. bounds is what
// the agent's flags let it hold (block cache and bytes in flight; 0 for
// meta): when that is most of the container's limit, the collector runs
// near the limit all the time, and the log says which flags to lower.
func applyMemoryLimit(log *slog.Logger, bounds int64) {
	s, err := memlimit.Apply()
	if err != nil {
		log.Warn("reading the container's memory limit; the Go runtime keeps its default (set GOMEMLIMIT to give one)", "err", err)
		return
	}
	log.Info(s.String())
	if s.Container > 0 && bounds > s.Container*3/4 {
		log.Warn("--cache-bytes, --max-inflight-bytes and twice --max-fetch-bytes-inflight together allow most of the container's memory limit: lower them, or give the container more memory",
			"bounds_bytes", bounds, "container_limit_bytes", s.Container)
	}
}

// memoryBounds is what an agent's flags let it hold at most in its
// largest pools. --max-fetch-bytes-inflight counts twice: fetch
// responses hold that much of copies, and as much again of cached
// blocks they refer to (server/fetch_records.go), which an eviction
// leaves outside the cache until the response is written.
func (f *agentFlags) memoryBounds() int64 {
	return f.cacheBytes + f.maxInFlight + 2*f.maxFetchInflight
}
