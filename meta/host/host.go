// Package host is the control plane as a service: it hosts several
// isolated virtual clusters (one controller.Service each), the agent keys that
// open them, and, on PostgreSQL, the leadership among meta replicas.
// meta/rpc serves it over gRPC; cmd/sluice wires the two.
//
// # Isolation
//
// Every cluster has its own store (a directory, or its own rows keyed by
// cluster name in PostgreSQL) and its own Service. An agent key belongs to
// exactly one cluster and resolves to that cluster's Service only, so
// nothing an agent can send names another cluster's topics, groups or
// agents.
//
// # Leadership
//
// With the embedded store there is one replica (bbolt's file lock refuses
// a second process). With PostgreSQL every replica runs Run: it waits for
// leadership (kv.AcquireLeadership), opens clusters lazily while it
// leads, and when leadership is lost closes them all and waits again.
// A standby answers every call with meta.ErrNotLeader (retriable), so
// agents move on to the next --meta-addr.
package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"sluice.dev/meta"
	"sluice.dev/meta/controller"
	"sluice.dev/meta/kv"
)

// Config configures a Host.
type Config struct {
	// Store is a directory for the embedded store or a postgres:// URL.
	Store string
	// AdminToken guards the Admin API (keys). Empty refuses every admin
	// call.
	AdminToken string
	// Holder names this replica in the leader row (its listen address),
	// so standbys can tell agents and operators who leads.
	Holder string
	// Meta is the template for every cluster's controller.Config (Dir and
	// Store are set per cluster).
	Meta   controller.Config
	Logger *slog.Logger
}

// Host serves clusters and keys. Its methods are safe for concurrent
// use.
type Host struct {
	cfg  Config
	log  *slog.Logger
	pool *pgxpool.Pool // nil for the embedded store

	mu      sync.Mutex
	leading bool
	lease   *kv.Lease // nil for the embedded store
	system  kv.KV     // keys; nil while not leading
	keys    *keyTable // never changed in place: writeKey replaces it
	// leadingKeys is keys while leading, nil otherwise, for CheckKey,
	// which must not wait for h.mu (held while a cluster opens, or while
	// notLeading asks the database).
	leadingKeys atomic.Pointer[keyTable]
	clusters    map[string]*controller.Service
	closed      bool
}

var clusterName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ValidCluster checks a virtual cluster's name.
func ValidCluster(name string) error {
	if !clusterName.MatchString(name) {
		return fmt.Errorf("cluster name %q: use 1 to 63 lowercase letters, digits, '-' or '_', starting with a letter or digit", name)
	}
	return nil
}

// Open prepares a Host. With the embedded store it leads at once; with
// PostgreSQL it leads once Run wins the leadership.
func Open(ctx context.Context, cfg Config) (*Host, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &Host{cfg: cfg, log: cfg.Logger, clusters: make(map[string]*controller.Service)}
	if isPostgres(cfg.Store) {
		pcfg, err := pgxpool.ParseConfig(cfg.Store)
		if err != nil {
			return nil, fmt.Errorf("--store: %w", err)
		}
		pool, err := pgxpool.NewWithConfig(ctx, pcfg)
		if err != nil {
			return nil, fmt.Errorf("--store: connect to PostgreSQL: %w", err)
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = pool.Ping(pctx)
		cancel()
		if err != nil {
			pool.Close()
			return nil, fmt.Errorf("--store: PostgreSQL at %s:%d does not answer: %w", pcfg.ConnConfig.Host, pcfg.ConnConfig.Port, err)
		}
		h.pool = pool
		openHosts.Store(h, struct{}{})
		return h, nil
	}
	if cfg.Store == "" {
		return nil, errors.New("--store is empty: name a directory for the embedded store or a postgres:// URL")
	}
	sys, err := kv.OpenBolt(filepath.Join(cfg.Store, "system"))
	if err != nil {
		return nil, fmt.Errorf("--store %s: %w", cfg.Store, err)
	}
	keys, err := loadKeys(sys)
	if err != nil {
		sys.Close()
		return nil, fmt.Errorf("--store %s: %w", cfg.Store, err)
	}
	h.system, h.keys, h.leading = sys, keys, true
	h.leadingKeys.Store(keys)
	openHosts.Store(h, struct{}{})
	return h, nil
}

func isPostgres(store string) bool {
	return strings.HasPrefix(store, "postgres://") || strings.HasPrefix(store, "postgresql://")
}

// Leading reports whether this replica serves (the embedded store
// always does).
func (h *Host) Leading() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.leading
}

// Run keeps this replica leading or waiting to lead until ctx ends. With
// the embedded store it only waits for ctx.
func (h *Host) Run(ctx context.Context) error {
	if h.pool == nil {
		<-ctx.Done()
		return nil
	}
	for ctx.Err() == nil {
		h.log.Info("meta: standby, waiting for leadership", "holder", h.cfg.Holder)
		lease, err := kv.AcquireLeadership(ctx, h.pool, h.cfg.Holder, h.log)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			h.log.Warn("meta: leadership attempt failed", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		if err := h.lead(ctx, lease); err != nil {
			h.log.Error("meta: cannot lead", "err", err)
			lease.Release()
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		select {
		case <-ctx.Done():
			h.stepDown("shutting down")
			lease.Release()
			return nil
		case <-lease.Lost():
			h.stepDown("leadership lost")
			lease.Release()
		}
	}
	return nil
}

// lead loads the keys under a fresh lease and starts serving.
func (h *Host) lead(ctx context.Context, lease *kv.Lease) error {
	sys, err := kv.OpenPostgres(ctx, h.pool, "_system", lease)
	if err != nil {
		return err
	}
	keys, err := loadKeys(sys)
	if err != nil {
		sys.Close()
		return err
	}
	h.mu.Lock()
	h.lease, h.system, h.keys, h.leading = lease, sys, keys, true
	h.leadingKeys.Store(keys)
	h.mu.Unlock()
	h.log.Info("meta: leading", "epoch", lease.Epoch(), "holder", h.cfg.Holder, "keys", keys.len())
	return nil
}

// stepDown closes every cluster and stops serving.
func (h *Host) stepDown(why string) {
	h.mu.Lock()
	clusters := h.clusters
	sys := h.system
	h.clusters = make(map[string]*controller.Service)
	h.leading, h.lease, h.system, h.keys = false, nil, nil, nil
	h.leadingKeys.Store(nil)
	h.mu.Unlock()
	for name, s := range clusters {
		if err := s.Close(); err != nil {
			h.log.Warn("meta: close cluster", "cluster", name, "err", err)
		}
	}
	if sys != nil {
		sys.Close()
	}
	h.log.Warn("meta: stepped down", "why", why, "clusters_closed", len(clusters))
}

// notLeading is the error a standby answers with.
func (h *Host) notLeading() error {
	if h.pool == nil {
		return meta.ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if who, err := kv.CurrentLeader(ctx, h.pool); err == nil && who != "" && who != h.cfg.Holder {
		return fmt.Errorf("%w (the leader is %s)", meta.ErrNotLeader, who)
	}
	return meta.ErrNotLeader
}

// Cluster returns the Service of a cluster, opening it on first use.
// Clusters come into being when their first key is created.
func (h *Host) Cluster(ctx context.Context, name string) (*controller.Service, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, meta.ErrClosed
	}
	if !h.leading {
		return nil, h.notLeading()
	}
	if s := h.clusters[name]; s != nil {
		return s, nil
	}
	if err := ValidCluster(name); err != nil {
		return nil, fmt.Errorf("%w: %v", meta.ErrInvalidRequest, err)
	}
	mc := h.cfg.Meta
	mc.Logger = h.log.With("cluster", name)
	if h.pool != nil {
		store, err := kv.OpenPostgres(ctx, h.pool, "cluster/"+name, h.lease)
		if err != nil {
			return nil, fmt.Errorf("open cluster %s: %w", name, err)
		}
		mc.Store = store
	} else {
		mc.Dir = filepath.Join(h.cfg.Store, "clusters", name)
	}
	// Opening reads the whole store; holding h.mu meanwhile keeps two
	// callers from opening one cluster twice.
	s, err := controller.Open(mc)
	if err != nil {
		return nil, fmt.Errorf("open cluster %s: %w", name, err)
	}
	h.clusters[name] = s
	h.log.Info("meta: cluster opened", "cluster", name)
	return s, nil
}

// Close closes every cluster, the key store and the database pool.
func (h *Host) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	openHosts.Delete(h)
	clusters, sys := h.clusters, h.system
	h.clusters, h.system, h.leading = nil, nil, false
	h.mu.Unlock()
	var first error
	for _, s := range clusters {
		if err := s.Close(); err != nil && first == nil {
			first = err
		}
	}
	if sys != nil {
		if err := sys.Close(); err != nil && first == nil {
			first = err
		}
	}
	if h.pool != nil {
		h.pool.Close()
	}
	return first
}
