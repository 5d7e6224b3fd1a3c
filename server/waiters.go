package server

import (
	"sync"

	"sluice.dev/meta"
)

// fetchWaiters parks long-polling fetches by partition; commit events
// wake them. notify never blocks: a waiter's channel holds one pending
// wake-up, and more are redundant.
type fetchWaiters struct {
	mu     sync.Mutex
	byTP   map[meta.TopicPartition]map[*fetchWaiter]struct{} // guarded by mu
	all    map[*fetchWaiter]struct{}                         // guarded by mu
	closed chan struct{}
}

type fetchWaiter struct {
	ch     chan struct{}
	tps    []meta.TopicPartition
	closed <-chan struct{}
}

func newFetchWaiters() *fetchWaiters {
	return &fetchWaiters{
		byTP:   make(map[meta.TopicPartition]map[*fetchWaiter]struct{}),
		all:    make(map[*fetchWaiter]struct{}),
		closed: make(chan struct{}),
	}
}

func (fw *fetchWaiters) add(parts []fetchPart) *fetchWaiter {
	w := &fetchWaiter{ch: make(chan struct{}, 1), closed: fw.closed}
	fw.mu.Lock()
	for _, p := range parts {
		if !p.known {
			continue
		}
		set := fw.byTP[p.tp]
		if set == nil {
			set = make(map[*fetchWaiter]struct{})
			fw.byTP[p.tp] = set
		}
		set[w] = struct{}{}
		w.tps = append(w.tps, p.tp)
	}
	fw.all[w] = struct{}{}
	fw.mu.Unlock()
	return w
}

func (fw *fetchWaiters) remove(w *fetchWaiter) {
	fw.mu.Lock()
	for _, tp := range w.tps {
		if set := fw.byTP[tp]; set != nil {
			delete(set, w)
			if len(set) == 0 {
				delete(fw.byTP, tp)
			}
		}
	}
	delete(fw.all, w)
	fw.mu.Unlock()
}

func (fw *fetchWaiters) notify(tp meta.TopicPartition) {
	fw.mu.Lock()
	for w := range fw.byTP[tp] {
		select {
		case w.ch <- struct{}{}:
		default:
		}
	}
	fw.mu.Unlock()
}

func (fw *fetchWaiters) notifyAll() {
	fw.mu.Lock()
	for w := range fw.all {
		select {
		case w.ch <- struct{}{}:
		default:
		}
	}
	fw.mu.Unlock()
}

// closeAll answers every parked fetch now (shutdown).
func (fw *fetchWaiters) closeAll() {
	fw.mu.Lock()
	select {
	case <-fw.closed:
	default:
		close(fw.closed)
	}
	fw.mu.Unlock()
}
