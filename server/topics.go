package server

import (
	"context"
	"sync"
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

// byNames resolves names, asking meta for the ones not cached or stale.
// Unknown names are absent from the result.
func (tc *topicCache) byNames(ctx context.Context, names []string) (map[string]meta.Topic, error) {
	out := make(map[string]meta.Topic, len(names))
	var missing []string
	now := time.Now()
	tc.mu.RLock()
	for _, n := range names {
		if ct, ok := tc.byName[n]; ok && now.Sub(ct.fetched) < topicTTL {
			out[n] = ct.t
		} else {
			missing = append(missing, n)
		}
	}
	tc.mu.RUnlock()
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
	var missing []meta.TopicID
	now := time.Now()
	tc.mu.RLock()
	for _, id := range ids {
		if ct, ok := tc.byID[id]; ok && now.Sub(ct.fetched) < topicTTL {
			out[id] = ct.t
		} else {
			missing = append(missing, id)
		}
	}
	tc.mu.RUnlock()
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
