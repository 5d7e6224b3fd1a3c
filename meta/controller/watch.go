package controller

import (
	"context"
	"slices"

	"sluice.dev/meta"
)

// A watcher is one Watch call. Its channel is closed exactly once, by
// whoever removes it from Service.watchers (holding wmu): the end of its
// context, the committer dropping it for falling behind, or Close.
type watcher struct {
	ch   chan []meta.CommitEvent
	stop func() bool // unregisters the context.AfterFunc
}

// Watch implements Client. Each committed group that added index entries
// is sent as one batch, after it is durable and visible to Lookup. Every
// watcher gets its own slice. A watcher whose buffer (Config.WatchBuffer
// batches) is full when a batch is ready is dropped: its channel is
// closed and the committer moves on; it never waits for a watcher.
func (s *Service) Watch(ctx context.Context) (<-chan []meta.CommitEvent, error) {
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	w := &watcher{ch: make(chan []meta.CommitEvent, s.cfg.WatchBuffer)}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.watchClosed {
		return nil, meta.ErrClosed
	}
	s.watchers[w] = struct{}{}
	// If ctx is already done the function runs at once, in its own
	// goroutine, and waits for wmu: w is registered by then.
	w.stop = context.AfterFunc(ctx, func() {
		s.wmu.Lock()
		defer s.wmu.Unlock()
		s.dropWatcherLocked(w)
	})
	return w.ch, nil
}

// dropWatcherLocked removes w and closes its channel, if w is still
// registered. s.wmu must be held.
func (s *Service) dropWatcherLocked(w *watcher) {
	if _, ok := s.watchers[w]; !ok {
		return
	}
	delete(s.watchers, w)
	w.stop()
	close(w.ch)
}

// publish sends the events built by events to every watcher, dropping
// those that are full. It runs on the committer after the group is
// merged, holding wmu only. events is not called when nobody watches.
func (s *Service) publish(events func() []meta.CommitEvent) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if len(s.watchers) == 0 {
		return
	}
	evs := events()
	if len(evs) == 0 {
		return
	}
	given := false // whether evs itself went to a watcher
	for w := range s.watchers {
		batch := evs
		if given {
			batch = slices.Clone(evs)
		}
		select {
		case w.ch <- batch:
			given = true
		default:
			watchersDropped.Inc()
			s.log.Warn("meta: dropping a watcher that fell behind", "buffer", cap(w.ch))
			s.dropWatcherLocked(w)
		}
	}
}

// closeWatchers closes every watcher and refuses new ones (Close).
func (s *Service) closeWatchers() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.watchClosed = true
	for w := range s.watchers {
		s.dropWatcherLocked(w)
	}
}
