// Package grafana holds Sluice's Grafana dashboards (agent.json: the
// data plane; meta.json: the control plane) and the test that keeps them
// honest: every PromQL expression parses, and every metric (and label
// value) it names is on /metrics of a real agent and a real meta after
// produce and fetch traffic.
package grafana
