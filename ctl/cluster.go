package ctl

// sluice cluster info.

import (
	"context"
	"fmt"
	"strconv"
)

func clusterInfo(ctx context.Context, e *env, args []string) error {
	fs := e.flags("cluster info")
	if _, err := e.parse(fs, args, "", 0, 0); err != nil {
		return err
	}
	adm, err := e.admin(ctx)
	if err != nil {
		return err
	}
	rctx, cancel := e.bounded(ctx)
	defer cancel()
	m, err := adm.Metadata(rctx)
	if err != nil {
		return explain(err, subject{}, "")
	}
	type brokerJSON struct {
		ID   int32  `json:"id"`
		Host string `json:"host"`
		Port int32  `json:"port"`
		Rack string `json:"rack,omitempty"`
	}
	type infoJSON struct {
		ClusterID  string       `json:"cluster_id"`
		Controller int32        `json:"controller"`
		Topics     int          `json:"topics"`
		Partitions int          `json:"partitions"`
		Brokers    []brokerJSON `json:"brokers"`
	}
	info := infoJSON{ClusterID: m.Cluster, Controller: m.Controller, Brokers: []brokerJSON{}}
	for _, d := range m.Topics {
		if d.IsInternal || d.Err != nil {
			continue
		}
		info.Topics++
		info.Partitions += len(d.Partitions)
	}
	for _, b := range m.Brokers {
		bj := brokerJSON{ID: b.NodeID, Host: b.Host, Port: b.Port}
		if b.Rack != nil {
			bj.Rack = *b.Rack
		}
		info.Brokers = append(info.Brokers, bj)
	}
	if e.json() {
		return writeJSON(e.Out, info)
	}
	t := newTable(e.Out)
	t.row("CLUSTER-ID", info.ClusterID)
	t.row("CONTROLLER", info.Controller)
	t.row("BROKERS", len(info.Brokers))
	t.row("TOPICS", info.Topics)
	t.row("PARTITIONS", info.Partitions)
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(e.Out)
	t = newTable(e.Out, "ID", "HOST", "PORT", "RACK")
	for _, b := range info.Brokers {
		t.row(b.ID, b.Host, strconv.Itoa(int(b.Port)), b.Rack)
	}
	return t.flush()
}
