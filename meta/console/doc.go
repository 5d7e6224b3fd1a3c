// Package console is the web console of the control plane (issue 16):
// per virtual cluster, its topics, consumer groups and their lag, agents,
// background jobs and what the bucket has cost so far, with charts of the
// last hour. `sluice meta` serves it on --http-addr behind the admin
// token; the playground serves it on its HTTP address.
//
// # What it reads
//
// Only metadata meta already holds (topics, partition states, the index's
// byte ranges, committed offsets, group membership, the agent registry,
// the jobs' state) and the counters agents send with their heartbeats
// (meta.AgentStats). It never reads a record byte: meta has none
// (DESIGN.md invariant 5), and the console asks nothing of the bucket.
//
// # Why plain HTML
//
// Pages are rendered on the server with html/template from files embedded
// with embed.FS; charts are inline SVG drawn on the server; the only
// JavaScript is a few lines that re-price the cost page as prices are
// edited. There is no build step, no node toolchain, no framework and no
// dependency to update: the console builds with `go build` and keeps
// working unchanged for as long as browsers render HTML and SVG, which is
// the property a page an operator opens during an incident needs most.
// Each page is one GET whose answer is complete, so it also works with
// curl and with JavaScript switched off (prices then apply on submit).
//
// # History
//
// The charts come from a bounded in-memory ring of samples per cluster
// (Config.SampleEvery over Config.Window, one hour by default), taken by
// Run. It is not persisted: after a restart or a failover the new leader's
// charts start empty and fill again, as does the cost accumulated from
// agents that have since gone.
package console
