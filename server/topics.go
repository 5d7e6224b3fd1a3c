package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"sluice.dev/meta"
)

// topicTTL bounds how long the agent trusts a cached topic before asking
// meta again. Topics are created far more often than changed; a later
// issue (deletes, partition growth) pushes invalidations instead.
const topicTTL = 10 * time.Second

// topicCache remembers topics by name and id so the produce and fetch
// paths do not ask meta for every request.
type topicCache struct {
	meta meta.Client

	mu     sync.RWMutex
	byName map[string]cachedTopic       // guarded by mu
	byID   map[meta.TopicID]cachedTopic // guarded by mu

	refreshing atomic.Bool // a background refresh is running
}

type cachedTopic struct {
	t       meta.Topic
	fetched time.Time
}

func newTopicCache(m meta.Client) *topicCache {
	return &topicCache{meta: m, byName: map[string]cachedTopic{}, byID: map[meta.TopicID]cachedTopic{}}
}

func (tc *topicCache) put(ts []meta.Topic) {
	now := time.Now()
	tc.mu.Lock()
	for _, t := range ts {
		ct := cachedTopic{t: t, fetched: now}
		tc.byName[t.Name] = ct
		tc.byID[t.ID] = ct
	}
	tc.mu.Unlock()
}

// byNames resolves names: cached ones at once (stale ones are renewed in
// the background), the others by asking meta. Unknown names are absent
// from the result. A stale entry is served rather than nothing while meta
// cannot be reached: fetches of indexed data keep working through a meta
// outage, and produces fail only at the commit.
func (tc *topicCache) byNames(ctx context.Context, names []string) (map[string]meta.Topic, error) {
	out := make(map[string]meta.Topic, len(names))
	var missing, stale []string
	now := time.Now()
	tc.mu.RLock()
	for _, n := range names {
		ct, ok := tc.byName[n]
		switch {
		case ok && now.Sub(ct.fetched) < topicTTL:
			out[n] = ct.t
		case ok:
			out[n] = ct.t
			stale = append(stale, n)
		default:
			missing = append(missing, n)
		}
	}
	tc.mu.RUnlock()
	if len(stale) > 0 {
		tc.refresh(func(ctx context.Context) error {
			ts, err := tc.meta.Topics(ctx, stale)
			if err == nil {
				tc.replace(stale, nil, ts)
			}
			return err
		})
	}
	if len(missing) == 0 {
		return out, nil
	}
	ts, err := tc.meta.Topics(ctx, missing)
	if err != nil {
		return nil, err
	}
	tc.put(ts)
	for _, t := range ts {
		out[t.Name] = t
	}
	return out, nil
}

// byIDs resolves topic ids the same way.
func (tc *topicCache) byIDs(ctx context.Context, ids []meta.TopicID) (map[meta.TopicID]meta.Topic, error) {
	out := make(map[meta.TopicID]meta.Topic, len(ids))
	var missing, stale []meta.TopicID
	now := time.Now()
	tc.mu.RLock()
	for _, id := range ids {
		ct, ok := tc.byID[id]
		switch {
		case ok && now.Sub(ct.fetched) < topicTTL:
			out[id] = ct.t
		case ok:
			out[id] = ct.t
			stale = append(stale, id)
		default:
			missing = append(missing, id)
		}
	}
	tc.mu.RUnlock()
	if len(stale) > 0 {
		tc.refresh(func(ctx context.Context) error {
			ts, err := tc.meta.TopicsByID(ctx, stale)
			if err == nil {
				tc.replace(nil, stale, ts)
			}
			return err
		})
	}
	if len(missing) == 0 {
		return out, nil
	}
	ts, err := tc.meta.TopicsByID(ctx, missing)
	if err != nil {
		return nil, err
	}
	tc.put(ts)
	for _, t := range ts {
		out[t.ID] = t
	}
	return out, nil
}

// refresh runs fn in the background unless a refresh is already running:
// a stale entry is answered at once and renewed behind the request, so a
// slow or unreachable meta never delays produce or fetch requests for
// topics the agent knows.
func (tc *topicCache) refresh(fn func(context.Context) error) {
	if !tc.refreshing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer tc.refreshing.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), topicTTL)
		defer cancel()
		_ = fn(ctx) // on error the stale entries stay; the next request tries again
	}()
}

// replace stores ts and forgets the asked-for names and ids meta no
// longer knows (topics deleted through another agent).
func (tc *topicCache) replace(names []string, ids []meta.TopicID, ts []meta.Topic) {
	tc.put(ts)
	found := make(map[meta.TopicID]bool, len(ts))
	for _, t := range ts {
		found[t.ID] = true
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	for _, n := range names {
		if ct, ok := tc.byName[n]; ok && !found[ct.t.ID] {
			delete(tc.byName, n)
			delete(tc.byID, ct.t.ID)
		}
	}
	for _, id := range ids {
		if ct, ok := tc.byID[id]; ok && !found[id] {
			delete(tc.byName, ct.t.Name)
			delete(tc.byID, id)
		}
	}
}

// forget drops cached topics after a change made through this agent.
func (tc *topicCache) forget(names ...string) {
	tc.mu.Lock()
	for _, n := range names {
		if ct, ok := tc.byName[n]; ok {
			delete(tc.byID, ct.t.ID)
			delete(tc.byName, n)
		}
	}
	tc.mu.Unlock()
}

// resolve maps request topic indexes 0..n-1 to topics: by id when byID is
// set (Produce and Fetch v13+), else by name. Unknown topics are absent.
func (tc *topicCache) resolve(ctx context.Context, n int, byID bool, name func(int) string, id func(int) meta.TopicID) (map[int]meta.Topic, error) {
	out := make(map[int]meta.Topic, n)
	if byID {
		ids := make([]meta.TopicID, n)
		for i := range ids {
			ids[i] = id(i)
		}
		found, err := tc.byIDs(ctx, ids)
		if err != nil {
			return nil, err
		}
		for i, x := range ids {
			if t, ok := found[x]; ok {
				out[i] = t
			}
		}
		return out, nil
	}
	names := make([]string, n)
	for i := range names {
		names[i] = name(i)
	}
	found, err := tc.byNames(ctx, names)
	if err != nil {
		return nil, err
	}
	for i, x := range names {
		if t, ok := found[x]; ok {
			out[i] = t
		}
	}
	return out, nil
}
