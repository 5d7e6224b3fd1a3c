package console

import (
	"context"
	"sort"
	"time"

	"sluice.dev/meta"
	"sluice.dev/meta/controller"
)

// maxChartGroups bounds the groups whose own lag each sample keeps (the
// largest lags win); the total covers every group. Together with
// maxSamples it bounds the ring's memory whatever clients do.
const maxChartGroups = 20

// sample is one point of the charts.
type sample struct {
	At       time.Time
	Produce  float64 // record bytes per second accepted, all agents
	Fetch    float64 // record bytes per second returned, all agents
	Lag      int64   // total consumer lag, all groups
	GroupLag map[string]int64
}

// history is one cluster's ring of samples and its running totals of
// what agents reported.
type history struct {
	ring []sample // a ring of cap(ring) samples; next is the oldest once full
	next int
	full bool

	// last is each live agent's latest counters; totals adds up what
	// every agent seen since this console started reported (an agent's
	// first report counts in full: its counters start with its process).
	last   map[string]meta.AgentStats
	lastAt time.Time
	totals meta.AgentStats
	since  time.Time
}

func (h *history) add(s sample) {
	if len(h.ring) < cap(h.ring) {
		h.ring = append(h.ring, s)
		return
	}
	h.ring[h.next] = s
	h.next = (h.next + 1) % len(h.ring)
	h.full = true
}

// samples returns the samples from after, oldest first.
func (h *history) samples(after time.Time) []sample {
	out := make([]sample, 0, len(h.ring))
	for i := range h.ring {
		s := h.ring[(h.next+i)%len(h.ring)]
		if s.At.After(after) {
			out = append(out, s)
		}
	}
	return out
}

// growth is how much a cumulative counter grew from was to now; a counter
// that went down was reset (the agent restarted) and grew by now.
func growth(was, now int64) int64 {
	if now < was {
		return now
	}
	return now - was
}

// accountLocked folds the agents' latest counters into h and returns how
// many produced and fetched bytes are new since the last call, counting
// only agents seen before (a new agent's counters span an unknown
// interval). The caller holds c.mu.
func (h *history) accountLocked(agents []controller.AgentStatus, now time.Time) (produced, fetched int64) {
	if h.last == nil {
		h.last = map[string]meta.AgentStats{}
		h.since = now
	}
	seen := make(map[string]meta.AgentStats, len(agents))
	for _, a := range agents {
		cur := a.Info.Stats
		was, known := h.last[a.Info.ID]
		if known {
			produced += growth(was.ProducedBytes, cur.ProducedBytes)
			fetched += growth(was.FetchedBytes, cur.FetchedBytes)
		}
		seen[a.Info.ID] = cur
	}
	h.totals = h.totalsWith(agents)
	h.last = seen
	return produced, fetched
}

// totalsWith is h.totals with the agents' counters as they are now
// folded in, leaving h as it is (the sampler's rates are measured over
// its own intervals).
func (h *history) totalsWith(agents []controller.AgentStatus) meta.AgentStats {
	t := h.totals
	for _, a := range agents {
		was, cur := h.last[a.Info.ID], a.Info.Stats
		t.ProducedBytes += growth(was.ProducedBytes, cur.ProducedBytes)
		t.FetchedBytes += growth(was.FetchedBytes, cur.FetchedBytes)
		t.ObjectPuts += growth(was.ObjectPuts, cur.ObjectPuts)
		t.ObjectGets += growth(was.ObjectGets, cur.ObjectGets)
		t.BytesPut += growth(was.BytesPut, cur.BytesPut)
		t.BytesGot += growth(was.BytesGot, cur.BytesGot)
	}
	return t
}

func (c *Console) historyLocked(name string) *history {
	h := c.clusters[name]
	if h == nil {
		n := min(int(c.cfg.Window/c.cfg.SampleEvery)+1, maxSamples)
		h = &history{ring: make([]sample, 0, n)}
		c.clusters[name] = h
	}
	return h
}

// Run samples every cluster each SampleEvery until ctx ends.
func (c *Console) Run(ctx context.Context) {
	t := time.NewTicker(c.cfg.SampleEvery)
	defer t.Stop()
	for {
		c.SampleNow(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SampleNow takes one sample of every open cluster and forgets the
// history of clusters no longer open.
func (c *Console) SampleNow(ctx context.Context) {
	names := c.cfg.Source.Clusters()
	open := make(map[string]bool, len(names))
	for _, name := range names {
		open[name] = true
		cl := c.cfg.Source.Cluster(name)
		if cl == nil {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, c.cfg.SampleEvery)
		s, agents, err := c.measure(sctx, cl)
		cancel()
		if err != nil {
			c.log.Debug("console: sample", "cluster", name, "err", err)
			continue
		}
		c.mu.Lock()
		h := c.historyLocked(name)
		produced, fetched := h.accountLocked(agents, s.At)
		if !h.lastAt.IsZero() {
			if dt := s.At.Sub(h.lastAt).Seconds(); dt > 0 {
				s.Produce, s.Fetch = float64(produced)/dt, float64(fetched)/dt
			}
		}
		h.lastAt = s.At
		h.add(s)
		c.mu.Unlock()
	}
	c.mu.Lock()
	for name := range c.clusters {
		if !open[name] {
			delete(c.clusters, name)
		}
	}
	c.mu.Unlock()
}

// measure reads what one sample needs: the agents' counters and every
// group's lag.
func (c *Console) measure(ctx context.Context, cl Cluster) (sample, []controller.AgentStatus, error) {
	agents, err := cl.AgentStatuses(ctx)
	if err != nil {
		return sample{}, nil, err
	}
	s := sample{At: time.Now()}
	groups, err := cl.ListGroups(ctx)
	if err != nil {
		return sample{}, nil, err
	}
	type gl struct {
		name string
		lag  int64
	}
	var lags []gl
	names := map[meta.TopicID]string{} // lag only: the names are not needed
	for _, g := range groups {
		rows, err := groupLag(ctx, cl, g.Group, names)
		if err != nil {
			return sample{}, nil, err
		}
		var total int64
		for _, r := range rows {
			total += r.Lag
		}
		s.Lag += total
		lags = append(lags, gl{g.Group, total})
	}
	sort.Slice(lags, func(i, j int) bool {
		if lags[i].lag != lags[j].lag {
			return lags[i].lag > lags[j].lag
		}
		return lags[i].name < lags[j].name
	})
	s.GroupLag = make(map[string]int64, min(len(lags), maxChartGroups))
	for _, l := range lags[:min(len(lags), maxChartGroups)] {
		s.GroupLag[l.name] = l.lag
	}
	return s, agents, nil
}
