package cache

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"testing"

	"sluice.dev/internal/tlsconf"
	"sluice.dev/internal/tlstest"
)

// newTLSCluster is newCluster with every agent's peer port on mutual TLS:
// tlsFor(i) gives agent i's listener and dialer configurations.
func newTLSCluster(t *testing.T, bs int64, n int, tlsFor func(i int) (srv, client *tls.Config)) *cluster {
	t.Helper()
	cl := &cluster{bs: bs, store: newCountingStore()}
	cl.setPeers(nil)
	for i := range n {
		c := newTestCache(t, cl.store, BlockCacheConfig{BlockSize: bs, MaxBytes: 1 << 20})
		id := string(rune('a' + i))
		srv, client := tlsFor(i)
		z, err := StartZone(ZoneConfig{
			SelfID: id, Zone: "z1", Secret: testSecret, Listen: "127.0.0.1:0",
			Peers:  func() []Peer { return *cl.peers.Load() },
			Logger: testLogger(t), TLS: srv, ClientTLS: client,
		}, c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { z.Close() })
		cl.zones = append(cl.zones, z)
		cl.caches = append(cl.caches, c)
		cl.all = append(cl.all, Peer{ID: id, Addr: z.Addr(), Zone: "z1"})
	}
	cl.setPeers(cl.all)
	return cl
}

// peerTLS builds an agent's peer TLS from a certificate of ca.
func peerTLS(t *testing.T, dir string, ca *tlstest.CA, name string) (srv, client *tls.Config) {
	t.Helper()
	leaf := ca.Server(t, dir, name)
	srv, client, err := tlsconf.Peer(leaf.CertFile, leaf.KeyFile, ca.File, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return srv, client
}

// Agents with peer certificates of one CA push and read blocks over TLS
// exactly as over plain TCP: no object store GET, no fallback.
func TestZonePeersOverTLS(t *testing.T) {
	const bs = 1000
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "peers")
	cl := newTLSCluster(t, bs, 3, func(i int) (*tls.Config, *tls.Config) { return peerTLS(t, dir, ca, fmt.Sprint("agent", i)) })
	a := cl.zones[0]
	obj := randBytes(7, 4321)
	a.Uploaded("seg/tls", bytes.Clone(obj))
	waitFor(t, "pushes", func() bool { return a.pending.Load() == 0 })
	if st := a.Stats(); st.Pushes == 0 || st.PushErrors != 0 {
		t.Fatalf("uploader: %+v; want pushes over TLS, no errors", st)
	}
	for _, z := range cl.zones {
		zoneRead(t, z, "seg/tls", obj, 0, int64(len(obj)))
	}
	if n := cl.store.total.Load(); n != 0 {
		t.Fatalf("%d object store GETs, want 0", n)
	}
	for i, z := range cl.zones {
		if st := z.Stats(); st.PeerGets == 0 || st.Fallbacks != 0 || st.PeerGetErrors != 0 {
			t.Errorf("agent %d: %+v; want peer gets, no fallbacks or errors", i, st)
		}
	}
}

// An agent whose peer certificate another CA issued (it knows the peer
// secret, so only TLS stops it) gets nothing from the others: its peer
// GETs fail and it reads the object store itself; theirs to it fail the
// same way. Reads stay correct everywhere.
func TestZonePeerOfAnotherCARefused(t *testing.T) {
	const bs = 1000
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "peers")
	other := tlstest.NewCA(t, dir, "stranger")
	cl := newTLSCluster(t, bs, 2, func(i int) (*tls.Config, *tls.Config) {
		if i == 1 {
			return peerTLS(t, dir, other, "stranger")
		}
		return peerTLS(t, dir, ca, "agent")
	})
	objs := map[string][]byte{}
	for i := range 8 {
		key := fmt.Sprintf("seg/x/%d", i)
		objs[key] = randBytes(uint64(i), 2500)
		if err := cl.store.Put(t.Context(), key, objs[key]); err != nil {
			t.Fatal(err)
		}
	}
	for key, obj := range objs {
		for _, z := range cl.zones {
			zoneRead(t, z, key, obj, 0, int64(len(obj)))
		}
	}
	for i, z := range cl.zones {
		if st := z.Stats(); st.PeerGetErrors == 0 || st.ServedGets != 0 {
			t.Errorf("agent %d: %+v; want failed peer gets and none served", i, st)
		}
	}
}
