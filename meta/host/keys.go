package host

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"sluice.dev/meta"
	"sluice.dev/meta/kv"
	"sluice.dev/meta/rpc"
)

// Agent keys. A key is "sk_" followed by 32 random bytes in unpadded
// URL-safe base64; it is shown once, by CreateKey, and stored only as its
// SHA-256 (a stolen store does not yield working keys). A key's id is the
// first 12 hex digits of that hash: enough to name it in list and revoke,
// useless for authenticating. The table lives in the system store's
// "keys" bucket, key = hash, value = JSON keyRecord, and in memory, so
// that checking a key on every call costs one hash and one map lookup.

const keyPrefix = "sk_"

var bucketKeys = kv.BucketKeys

type keyRecord struct {
	ID        string    `json:"id"`
	Cluster   string    `json:"cluster"`
	Created   time.Time `json:"created"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

func (r keyRecord) info() rpc.KeyInfo {
	return rpc.KeyInfo{ID: r.ID, Cluster: r.Cluster, Created: r.Created, Revoked: !r.RevokedAt.IsZero(), RevokedAt: r.RevokedAt}
}

type keyTable struct {
	byHash map[[32]byte]keyRecord
}

func (t *keyTable) len() int { return len(t.byHash) }

func loadKeys(store kv.KV) (*keyTable, error) {
	t := &keyTable{byHash: make(map[[32]byte]keyRecord)}
	err := store.View(func(tx kv.KVTx) error {
		return tx.ForEach(bucketKeys, func(k, v []byte) error {
			var r keyRecord
			if len(k) != 32 || json.Unmarshal(v, &r) != nil {
				return fmt.Errorf("%w: agent key record %x", meta.ErrCorrupt, k)
			}
			t.byHash[[32]byte(k)] = r
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load agent keys: %w", err)
	}
	return t, nil
}

// Agent implements rpc.Backend: it resolves an agent key to its
// cluster.
func (h *Host) Agent(ctx context.Context, key string) (meta.Client, error) {
	r, leading, err := h.lookupKey(key)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %w", meta.ErrUnauthenticated, err)
	case !leading:
		return nil, h.notLeading()
	}
	return h.Cluster(ctx, r.Cluster)
}

// CheckKey implements rpc.Backend: Agent's refusals, from memory and
// without h.mu, which may be held for seconds (a cluster opening reads
// its whole store). A replica that does not lead says nil: its key table
// may be stale, and the call gets Agent's not-leader answer.
func (h *Host) CheckKey(key string) error {
	_, _, err := h.lookupKey(key)
	return err
}

// lookupKey finds key's record in the table of a leading replica, without
// h.mu. It fails for a key that is malformed, unknown or revoked; it says
// leading false (and no error) when this replica does not lead.
func (h *Host) lookupKey(key string) (r keyRecord, leading bool, err error) {
	if !strings.HasPrefix(key, keyPrefix) {
		return r, false, errors.New("no agent key given, or not a Sluice agent key (set --agent-key or SLUICE_AGENT_KEY)")
	}
	keys := h.leadingKeys.Load()
	if keys == nil {
		return r, false, nil
	}
	r, ok := keys.byHash[sha256.Sum256([]byte(key))]
	switch {
	case !ok:
		return r, true, errors.New("unknown agent key")
	case !r.RevokedAt.IsZero():
		return r, true, fmt.Errorf("agent key %s of cluster %s was revoked at %s", r.ID, r.Cluster, r.RevokedAt.UTC().Format(time.RFC3339))
	}
	return r, true, nil
}

// AdminAuth implements rpc.Backend.
func (h *Host) AdminAuth(token string) error {
	switch {
	case h.cfg.AdminToken == "":
		return errors.New("this meta has no admin token: start it with --admin-token or SLUICE_ADMIN_TOKEN to use the admin API")
	case token == "":
		return errors.New("no admin token given: pass --admin-token or set SLUICE_ADMIN_TOKEN")
	case subtle.ConstantTimeCompare([]byte(token), []byte(h.cfg.AdminToken)) != 1:
		return errors.New("wrong admin token")
	}
	return nil
}

// writeKey stores r under hash and updates the table once it is durable.
func (h *Host) writeKey(hash [32]byte, r keyRecord) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.leading {
		return h.notLeading()
	}
	// Writing under h.mu orders key changes; they are rare.
	if err := h.system.Update(func(tx kv.KVTx) error { return tx.Put(bucketKeys, hash[:], v) }); err != nil {
		return fmt.Errorf("store agent key: %w", err)
	}
	// A new table rather than a change in place: CheckKey reads the
	// table without h.mu. Keys change rarely, and are few.
	t := &keyTable{byHash: maps.Clone(h.keys.byHash)}
	t.byHash[hash] = r
	h.keys = t
	h.leadingKeys.Store(t)
	return nil
}

// CreateKey implements rpc.Backend: a new key for cluster, which comes
// into being with its first key.
func (h *Host) CreateKey(ctx context.Context, cluster string) (string, rpc.KeyInfo, error) {
	if err := ValidCluster(cluster); err != nil {
		return "", rpc.KeyInfo{}, fmt.Errorf("%w: %v", meta.ErrInvalidRequest, err)
	}
	var secret [32]byte
	rand.Read(secret[:])
	key := keyPrefix + base64.RawURLEncoding.EncodeToString(secret[:])
	hash := sha256.Sum256([]byte(key))
	r := keyRecord{ID: hex.EncodeToString(hash[:6]), Cluster: cluster, Created: time.Now().UTC()}
	if err := h.writeKey(hash, r); err != nil {
		return "", rpc.KeyInfo{}, err
	}
	// Open the cluster now so that a store problem shows at key
	// creation, not at the agent's first call.
	if _, err := h.Cluster(ctx, cluster); err != nil {
		return "", rpc.KeyInfo{}, err
	}
	h.log.Info("meta: agent key created", "cluster", cluster, "key_id", r.ID)
	return key, r.info(), nil
}

// ListKeys implements rpc.Backend: the keys of one cluster, or of all
// clusters when cluster is empty, oldest first.
func (h *Host) ListKeys(ctx context.Context, cluster string) ([]rpc.KeyInfo, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.leading {
		return nil, h.notLeading()
	}
	var out []rpc.KeyInfo
	for _, r := range h.keys.byHash {
		if cluster == "" || r.Cluster == cluster {
			out = append(out, r.info())
		}
	}
	slices.SortFunc(out, func(a, b rpc.KeyInfo) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// RevokeKey implements rpc.Backend. The key stops resolving at once;
// open streams of its agents end within a second (meta/rpc re-checks).
func (h *Host) RevokeKey(ctx context.Context, cluster, id string) error {
	h.mu.Lock()
	var hash [32]byte
	var r keyRecord
	found := false
	if h.keys != nil {
		for k, rec := range h.keys.byHash {
			if rec.ID == id && (cluster == "" || rec.Cluster == cluster) {
				hash, r, found = k, rec, true
				break
			}
		}
	}
	h.mu.Unlock()
	if !found {
		return fmt.Errorf("%w: no key %q in cluster %q", meta.ErrInvalidRequest, id, cluster)
	}
	if !r.RevokedAt.IsZero() {
		return nil
	}
	r.RevokedAt = time.Now().UTC()
	if err := h.writeKey(hash, r); err != nil {
		return err
	}
	h.log.Warn("meta: agent key revoked", "cluster", r.Cluster, "key_id", r.ID)
	return nil
}
