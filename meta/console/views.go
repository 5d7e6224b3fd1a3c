package console

import (
	"context"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/meta"
)

// lagRow is one partition a group committed an offset for.
type lagRow struct {
	Topic     string
	Partition int32
	Committed int64
	HWM       int64
	Lag       int64 // HWM - Committed, never below 0
}

// groupLag returns a group's committed partitions with their lag, by
// topic name and partition. names maps topic ids to names (nil: looked
// up).
func groupLag(ctx context.Context, cl Cluster, group string, names map[meta.TopicID]string) ([]lagRow, error) {
	offs, err := cl.FetchOffsets(ctx, group, nil)
	if err != nil || len(offs) == 0 {
		return nil, err
	}
	tps := make([]meta.TopicPartition, len(offs))
	for i, o := range offs {
		tps[i] = o.TopicPartition
	}
	states, err := cl.PartitionStates(ctx, tps)
	if err != nil {
		return nil, err
	}
	if names == nil {
		if names, err = topicNames(ctx, cl); err != nil {
			return nil, err
		}
	}
	rows := make([]lagRow, 0, len(offs))
	for i, o := range offs {
		if i >= len(states) || states[i].Err != nil {
			continue // a deleted topic's offsets linger until the group goes
		}
		r := lagRow{Topic: names[o.TopicID], Partition: o.Partition, Committed: o.Offset, HWM: states[i].HighWatermark}
		if r.Topic == "" {
			r.Topic = o.TopicID.String()
		}
		if o.Offset >= 0 {
			r.Lag = max(r.HWM-o.Offset, 0)
		}
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Topic != rows[j].Topic {
			return rows[i].Topic < rows[j].Topic
		}
		return rows[i].Partition < rows[j].Partition
	})
	return rows, nil
}

func topicNames(ctx context.Context, cl Cluster) (map[meta.TopicID]string, error) {
	ts, err := cl.Topics(ctx, nil)
	if err != nil {
		return nil, err
	}
	out := make(map[meta.TopicID]string, len(ts))
	for _, t := range ts {
		out[t.ID] = t.Name
	}
	return out, nil
}

// chartsOf returns the cluster's samples of the window.
func (c *Console) chartsOf(name string) []sample {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.clusters[name]
	if h == nil {
		return nil
	}
	return h.samples(time.Now().Add(-c.cfg.Window))
}

type overviewData struct {
	Topics, Partitions, Groups, Agents int
	Zones                              string
	Lag                                int64
	LiveBytes                          int64
	ProduceChart, FetchChart, LagChart template.HTML
	Samples                            int
	SampleEvery                        time.Duration
}

func (c *Console) overview(ctx context.Context, _ *http.Request, name string, cl Cluster) (string, string, any, error) {
	ts, err := cl.Topics(ctx, nil)
	if err != nil {
		return "", "", nil, err
	}
	groups, err := cl.ListGroups(ctx)
	if err != nil {
		return "", "", nil, err
	}
	agents, err := cl.AgentStatuses(ctx)
	if err != nil {
		return "", "", nil, err
	}
	d := overviewData{Topics: len(ts), Groups: len(groups), Agents: len(agents), LiveBytes: cl.JobsStats().LiveBytes, SampleEvery: c.cfg.SampleEvery}
	for _, t := range ts {
		d.Partitions += int(t.Partitions)
	}
	zones := map[string]int{}
	for _, a := range agents {
		zones[zoneName(a.Info.Zone)]++
	}
	var zs []string
	for _, z := range slices.Sorted(maps.Keys(zones)) {
		zs = append(zs, fmt.Sprintf("%s: %d", z, zones[z]))
	}
	d.Zones = strings.Join(zs, ", ")
	names := make(map[meta.TopicID]string, len(ts))
	for _, t := range ts {
		names[t.ID] = t.Name
	}
	for _, g := range groups {
		rows, err := groupLag(ctx, cl, g.Group, names)
		if err != nil {
			return "", "", nil, err
		}
		for _, r := range rows {
			d.Lag += r.Lag
		}
	}
	ss := c.chartsOf(name)
	d.Samples = len(ss)
	now := time.Now()
	d.ProduceChart = chart("produce", "bytes/s", c.cfg.Window, now, []series{pick(ss, "produced", func(s sample) float64 { return s.Produce })}, fmtBytesRate)
	d.FetchChart = chart("fetch", "bytes/s", c.cfg.Window, now, []series{pick(ss, "fetched", func(s sample) float64 { return s.Fetch })}, fmtBytesRate)
	d.LagChart = chart("lag", "records", c.cfg.Window, now, []series{pick(ss, "total lag", func(s sample) float64 { return float64(s.Lag) })}, fmtCount)
	return "overview", "Overview", d, nil
}

func zoneName(z string) string {
	if z == "" {
		return "(no zone)"
	}
	return z
}

type topicView struct {
	Name, ID     string
	Partitions   []partView
	LogStart     int64 // summed over partitions
	HWM          int64 // summed over partitions
	Records      int64
	Bytes        int64
	Configs      []configView
	RetentionMs  string
	RetentionB   string
	CleanupPol   string
	PartitionCnt int32
}

type partView struct {
	Partition              int32
	LogStart, HWM, Records int64
	Bytes                  int64
}

type configView struct{ Key, Value string }

func (c *Console) topics(ctx context.Context, _ *http.Request, _ string, cl Cluster) (string, string, any, error) {
	ts, err := cl.Topics(ctx, nil)
	if err != nil {
		return "", "", nil, err
	}
	var tps []meta.TopicPartition
	for _, t := range ts {
		for p := range t.Partitions {
			tps = append(tps, meta.TopicPartition{TopicID: t.ID, Partition: p})
		}
	}
	states, err := cl.PartitionStates(ctx, tps)
	if err != nil {
		return "", "", nil, err
	}
	bytes := cl.PartitionBytes()
	defMs, defBytes := cl.DefaultRetention()
	k := 0
	views := make([]topicView, 0, len(ts))
	for _, t := range ts {
		v := topicView{Name: t.Name, ID: t.ID.String(), PartitionCnt: t.Partitions,
			RetentionMs: fmtRetentionMs(strconv.FormatInt(defMs, 10)) + " (default)",
			RetentionB:  fmtRetentionBytes(strconv.FormatInt(defBytes, 10)) + " (default)",
			CleanupPol:  "delete"}
		for p := range t.Partitions {
			pv := partView{Partition: p}
			if k < len(states) && states[k].Err == nil {
				pv.LogStart, pv.HWM = states[k].LogStartOffset, states[k].HighWatermark
				pv.Records = pv.HWM - pv.LogStart
			}
			pv.Bytes = bytes[meta.TopicPartition{TopicID: t.ID, Partition: p}]
			k++
			v.Partitions = append(v.Partitions, pv)
			v.LogStart += pv.LogStart
			v.HWM += pv.HWM
			v.Records += pv.Records
			v.Bytes += pv.Bytes
		}
		for _, key := range slices.Sorted(maps.Keys(t.Configs)) {
			v.Configs = append(v.Configs, configView{key, t.Configs[key]})
		}
		if s, ok := t.Configs["retention.ms"]; ok {
			v.RetentionMs = fmtRetentionMs(s)
		}
		if s, ok := t.Configs["retention.bytes"]; ok {
			v.RetentionB = fmtRetentionBytes(s)
		}
		if s, ok := t.Configs["cleanup.policy"]; ok {
			v.CleanupPol = s
		}
		views = append(views, v)
	}
	return "topics", "Topics", views, nil
}

func fmtRetentionBytes(s string) string {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return s
	}
	if n < 0 {
		return "no limit"
	}
	return fmtBytes(float64(n))
}

func fmtRetentionMs(s string) string {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return s
	}
	if ms < 0 {
		return "forever"
	}
	return (time.Duration(ms) * time.Millisecond).String()
}

type groupView struct {
	Name, State, ProtocolType, Protocol string
	Members                             []memberView
	Lag                                 []lagRow
	TotalLag                            int64
}

type memberView struct {
	ID, Instance, ClientID, Host string
	Assigned                     string
}

type groupsData struct {
	Groups   []groupView
	LagChart template.HTML
}

func (c *Console) groups(ctx context.Context, _ *http.Request, name string, cl Cluster) (string, string, any, error) {
	list, err := cl.ListGroups(ctx)
	if err != nil {
		return "", "", nil, err
	}
	names, err := topicNames(ctx, cl)
	if err != nil {
		return "", "", nil, err
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Group < list[j].Group })
	var d groupsData
	for _, g := range list {
		desc, err := cl.DescribeGroup(ctx, g.Group)
		if err != nil {
			return "", "", nil, err
		}
		v := groupView{Name: g.Group, State: desc.State, ProtocolType: desc.ProtocolType, Protocol: desc.Protocol}
		if v.State == "" {
			v.State = g.State
		}
		for _, m := range desc.Members {
			v.Members = append(v.Members, memberView{ID: m.MemberID, Instance: m.InstanceID, ClientID: m.ClientID,
				Host: m.ClientHost, Assigned: assigned(desc.ProtocolType, m.Assignment)})
		}
		if v.Lag, err = groupLag(ctx, cl, g.Group, names); err != nil {
			return "", "", nil, err
		}
		for _, r := range v.Lag {
			v.TotalLag += r.Lag
		}
		d.Groups = append(d.Groups, v)
	}
	ss := c.chartsOf(name)
	var lines []series
	for _, g := range d.Groups {
		s := pick(ss, g.Name, func(s sample) float64 { return float64(s.GroupLag[g.Name]) })
		lines = append(lines, s)
		if len(lines) == maxChartGroups {
			break
		}
	}
	d.LagChart = chart("group-lag", "records", c.cfg.Window, time.Now(), lines, fmtCount)
	return "groups", "Consumer groups", d, nil
}

// assigned summarises a consumer-protocol member's assignment (topic:
// partitions); other protocols' assignments are opaque to meta.
func assigned(protocolType string, b []byte) string {
	if protocolType != "consumer" || len(b) == 0 {
		return ""
	}
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(b); err != nil {
		return "(undecodable)"
	}
	var parts []string
	for _, t := range a.Topics {
		ps := slices.Clone(t.Partitions)
		slices.Sort(ps)
		var s []string
		for _, p := range ps {
			s = append(s, strconv.Itoa(int(p)))
		}
		parts = append(parts, t.Topic+": "+strings.Join(s, ","))
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

type agentView struct {
	NodeID                        int32
	ID, Zone, Group, Roles, Addr  string
	PeerAddr                      string
	LastHeartbeat                 time.Time
	Ago                           string
	Health                        string
	Produced, Fetched, Puts, Gets int64
}

func (c *Console) agents(ctx context.Context, _ *http.Request, _ string, cl Cluster) (string, string, any, error) {
	as, err := cl.AgentStatuses(ctx)
	if err != nil {
		return "", "", nil, err
	}
	now := time.Now()
	views := make([]agentView, 0, len(as))
	for _, a := range as {
		roles := strings.Join(a.Info.Roles, ",")
		if roles == "" {
			roles = "all"
		}
		group := a.Info.Group
		if group == "" {
			group = "default"
		}
		age := now.Sub(a.LastHeartbeat)
		// An agent heartbeats several times per TTL (agent/registry.go);
		// one that missed half of it is late, and meta forgets it at TTL.
		health := "healthy"
		if age > a.TTL/2 {
			health = "late"
		}
		views = append(views, agentView{NodeID: a.Info.NodeID, ID: a.Info.ID, Zone: zoneName(a.Info.Zone), Group: group,
			Roles: roles, Addr: a.Info.Addr, PeerAddr: a.Info.PeerAddr, LastHeartbeat: a.LastHeartbeat,
			Ago: age.Round(100 * time.Millisecond).String(), Health: health,
			Produced: a.Info.Stats.ProducedBytes, Fetched: a.Info.Stats.FetchedBytes,
			Puts: a.Info.Stats.ObjectPuts, Gets: a.Info.Stats.ObjectGets})
	}
	sort.SliceStable(views, func(i, j int) bool { return views[i].Zone < views[j].Zone })
	return "agents", "Agents", views, nil
}

func (c *Console) jobs(_ context.Context, _ *http.Request, _ string, cl Cluster) (string, string, any, error) {
	return "jobs", "Background jobs", cl.JobsStats(), nil
}

type costData struct {
	Since                     time.Time
	Totals                    meta.AgentStats
	LiveBytes                 int64
	Prices                    Prices
	PutCost, GetCost, Storage float64
	Total                     float64
}

func (c *Console) cost(ctx context.Context, r *http.Request, name string, cl Cluster) (string, string, any, error) {
	agents, err := cl.AgentStatuses(ctx)
	if err != nil {
		return "", "", nil, err
	}
	d := costData{Prices: c.cfg.Prices, LiveBytes: cl.JobsStats().LiveBytes}
	q := r.URL.Query()
	price := func(key string, p *float64) {
		if s := q.Get(key); s != "" {
			if v, err := strconv.ParseFloat(s, 64); err == nil && v >= 0 && v < 1e6 {
				*p = v
			}
		}
	}
	price("put", &d.Prices.PerThousandPuts)
	price("get", &d.Prices.PerThousandGets)
	price("gbmonth", &d.Prices.PerGBMonth)
	c.mu.Lock()
	h := c.historyLocked(name)
	d.Totals, d.Since = h.totalsWith(agents), h.since
	c.mu.Unlock()
	if d.Since.IsZero() {
		d.Since = time.Now()
	}
	d.PutCost = float64(d.Totals.ObjectPuts) / 1000 * d.Prices.PerThousandPuts
	d.GetCost = float64(d.Totals.ObjectGets) / 1000 * d.Prices.PerThousandGets
	d.Storage = float64(d.LiveBytes) / 1e9 * d.Prices.PerGBMonth
	d.Total = d.PutCost + d.GetCost
	return "cost", "Object store cost", d, nil
}
