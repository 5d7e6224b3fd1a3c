package e2e

import (
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/internal/kafkatest"
)

// TestACLPropagation (issue 14): two `sluice agent` processes on one
// `sluice meta`, over gRPC. An ACL created through agent A is enforced
// on agent B, and its deletion too, each within 5 s; the test logs the
// times it measured. A runs with User:ANONYMOUS as super user (so that
// the unauthenticated test client may change ACLs there); B has no super
// user and enforces exactly the cluster's ACLs.
func TestACLPropagation(t *testing.T) {
	dir := t.TempDir()
	m := startMeta(t, "meta", filepath.Join(dir, "meta"), "127.0.0.1:0")
	key := createKey(t, m.lines["meta"], "acl")
	bucket := "file://" + filepath.Join(dir, "bucket")
	a := startAgent(t, "agent-a", m.lines["meta"], key, bucket, "--authorizer", "acl", "--super-users", "User:ANONYMOUS", "--zone", "za")
	b := startAgent(t, "agent-b", m.lines["meta"], key, bucket, "--authorizer", "acl", "--zone", "zb")
	ctx := testCtx(t, 2*time.Minute)

	// Each client names its agent's zone, so that Metadata offers it
	// that agent only: kadm's requests must reach A, where the client is
	// a super user.
	ca, err := kgo.NewClient(kgo.SeedBrokers(a.lines["bootstrap"]), kgo.ClientID("acl-test,sluice_az=za"))
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	adm := kadm.NewClient(ca)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "p"); err != nil {
		t.Fatal(err)
	}
	td, err := adm.ListTopics(ctx, "p")
	if err != nil || td["p"].Err != nil {
		t.Fatalf("list topics: %v %v", err, td["p"].Err)
	}
	tid := td["p"].ID

	cb, err := kgo.NewClient(kgo.SeedBrokers(b.lines["bootstrap"]), kgo.ClientID("acl-test,sluice_az=zb"))
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	onB := cb.SeedBrokers()[0]
	batch := kafkatest.AppendBatch(nil, kafkatest.BatchOpts{Records: 1, ValueSize: 8, ProducerID: -1})
	produceOnB := func() int16 {
		r := kmsg.NewPtrProduceRequest()
		r.Acks, r.TimeoutMillis = 1, 10000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic, rt.TopicID = "p", tid
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = batch
		rt.Partitions = append(rt.Partitions, rp)
		r.Topics = append(r.Topics, rt)
		resp, err := onB.Request(ctx, r)
		if err != nil {
			t.Fatalf("produce on B: %v", err)
		}
		return resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
	}
	// until polls produceOnB until it answers want, and returns how long
	// that took; past 5 s the test fails.
	until := func(what string, want int16) time.Duration {
		start := time.Now()
		for {
			got := produceOnB()
			if got == want {
				return time.Since(start)
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("%s: agent B still answers %v after 5s", what, kerr.ErrorForCode(got))
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	if got := produceOnB(); got != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("produce on B with no ACL: %v, want TOPIC_AUTHORIZATION_FAILED", kerr.ErrorForCode(got))
	}

	acl := kadm.NewACLs().Topics("p").Allow("User:ANONYMOUS").Operations(kadm.OpWrite)
	start := time.Now()
	res, err := adm.CreateACLs(ctx, acl)
	if err != nil || res[0].Err != nil {
		t.Fatalf("create acl through A: %v %+v", err, res)
	}
	created := time.Since(start)
	grant := until("grant", 0) + created
	t.Logf("ACL created through agent A in force on agent B after %v (CreateAcls answered in %v)", grant.Round(time.Millisecond), created.Round(time.Millisecond))

	start = time.Now()
	del, err := adm.DeleteACLs(ctx, kadm.NewACLs().Topics("p").Allow().AllowHosts().Operations(kadm.OpWrite))
	if err != nil || del[0].Err != nil || len(del[0].Deleted) != 1 {
		t.Fatalf("delete acl through A: %v %+v", err, del)
	}
	revoke := until("revoke", kerr.TopicAuthorizationFailed.Code) + time.Since(start)
	t.Logf("ACL deleted through agent A no longer in force on agent B after %v", revoke.Round(time.Millisecond))
}

// TestKcatACL (issue 14): librdkafka against a playground. Under
// --authorizer acl with no ACLs, kcat's produce is refused with
// TOPIC_AUTHORIZATION_FAILED (and creates nothing); under shadow, the same
// produce and a read back succeed while the playground logs and counts
// the denials it would have made.
func TestKcatACL(t *testing.T) {
	kcat := lookKcat(t)
	ctx := testCtx(t, 2*time.Minute)

	pg := startPlayground(t, t.TempDir(), "--authorizer", "acl")
	prod := exec.CommandContext(ctx, kcat, "-P", "-b", pg.bootstrap, "-t", "locked", "-X", "message.timeout.ms=5000")
	prod.Stdin = strings.NewReader("v\n")
	out, err := prod.CombinedOutput()
	if err == nil || !strings.Contains(strings.ToLower(string(out)), "topic authorization failed") {
		t.Fatalf("kcat produce with no ACL: %v\n%s\nwant a topic authorization failure", err, out)
	}
	md, _ := exec.CommandContext(ctx, kcat, "-L", "-b", pg.bootstrap).CombinedOutput()
	if !strings.Contains(string(md), " 0 topics:") {
		t.Fatalf("kcat -L with no ACL lists topics:\n%s", md)
	}

	sh := startPlayground(t, t.TempDir(), "--authorizer", "shadow")
	prod = exec.CommandContext(ctx, kcat, "-P", "-b", sh.bootstrap, "-t", "shadowed", "-X", "message.timeout.ms=10000")
	prod.Stdin = strings.NewReader("hello\n")
	if out, err := prod.CombinedOutput(); err != nil {
		t.Fatalf("kcat produce under shadow: %v\n%s", err, out)
	}
	cons, err := exec.CommandContext(ctx, kcat, "-C", "-b", sh.bootstrap, "-t", "shadowed", "-o", "beginning", "-e", "-q").Output()
	if err != nil || strings.TrimSpace(string(cons)) != "hello" {
		t.Fatalf("kcat consume under shadow: %v %q", err, cons)
	}
	if !strings.Contains(sh.stderr.String(), "authorizer (shadow): would deny") {
		t.Fatalf("no shadow denial logged:\n%s", tail(sh.stderr.String(), 4096))
	}
	resp, err := http.Get("http://" + sh.httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var n float64
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, `sluice_authz_denied_total{mode="shadow"} `); ok {
			n, _ = strconv.ParseFloat(v, 64)
		}
	}
	if n < 1 {
		t.Fatalf("sluice_authz_denied_total{mode=\"shadow\"} = %v, want at least 1", n)
	}
}
