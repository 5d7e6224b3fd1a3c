package controller

import (
	"context"
	"slices"
	"strconv"
	"strings"
)

// Retention (issue 12, item 1): a partition's log start offset advances
// past data older than its topic's retention.ms, and past the oldest
// data while the partition holds more than retention.bytes. Both are
// topic configs; the cluster's defaults are Config.DefaultRetentionMs
// and DefaultRetentionBytes. Meta can do this alone: it needs only the
// index (each entry's size and largest timestamp), never an object.
// Advancing the start is the DeleteRecords mechanism (records.go): the
// entries wholly below it leave the index and the store in the same
// commit, agents get a Trim event, reads below it answer
// OFFSET_OUT_OF_RANGE and ListOffsets earliest moves. The objects stay
// in the bucket until garbage collection removes unreferenced ones.
//
// Granularity is one index entry, a run of whole batches that one
// segment holds for the partition (about one flush interval of data):
// a batch is never split, as Kafka never splits a segment. As in Kafka,
// time retention walks from the oldest entry and stops at the first one
// that has not expired (largest timestamp at or after now - retention.ms),
// so a record with a timestamp in the future holds back what follows it;
// an entry without timestamps (largest timestamp < 0) never expires by
// time, only by size.

const defaultRetentionMs = 7 * 24 * 60 * 60 * 1000 // Kafka's log.retention.hours=168

// retentionOf reads a topic's retention configs, falling back to the
// cluster defaults; -1 means no limit. A value meta cannot parse (the
// agent validates configs before storing them) counts as the default.
func (s *Service) retentionOf(t *topicState) (ms, bytes int64) {
	if p := t.topic.Configs["cleanup.policy"]; p != "" && !slices.Contains(strings.Split(strings.ReplaceAll(p, " ", ""), ","), "delete") {
		return -1, -1 // compact only: cleaning, not retention, removes records
	}
	ms, bytes = s.cfg.DefaultRetentionMs, s.cfg.DefaultRetentionBytes
	if v, ok := t.topic.Configs["retention.ms"]; ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= -1 {
			ms = n
		}
	}
	if v, ok := t.topic.Configs["retention.bytes"]; ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= -1 {
			bytes = n
		}
	}
	return ms, bytes
}

// applyRetention advances the log start of every partition with expired
// data and returns how many partitions moved.
func (s *Service) applyRetention(g *group) int {
	moved := 0
	for id := range g.st.topicsByID {
		t := g.topicByID(id)
		if t == nil {
			continue // deleted earlier in this group
		}
		ms, maxBytes := s.retentionOf(t)
		if ms < 0 && maxBytes < 0 {
			continue
		}
		cutoff := g.nowMs - ms
		for _, ps := range t.parts {
			logStart := ps.logStart
			var newBytes int64
			if d, ok := g.parts[ps]; ok {
				logStart = d.logStart
				for i := range d.entries {
					newBytes += d.entries[i].Length
				}
			}
			n := ps.entries.len()
			// The first entry that still holds a readable offset.
			first := ps.entries.find(logStart)
			if first < 0 {
				first = 0
			}
			if first >= n || ps.entries.at(first).LastOffset < logStart {
				continue // nothing committed at or after the start
			}
			k := first
			if ms >= 0 {
				for k < n {
					e := ps.entries.at(k)
					if e.MaxTimestamp < 0 || e.MaxTimestamp >= cutoff {
						break
					}
					k++
				}
			}
			if maxBytes >= 0 {
				total := newBytes
				for i := first; i < n; i++ {
					total += ps.entries.at(i).Length
				}
				kb := first
				for kb < n && total > maxBytes {
					total -= ps.entries.at(kb).Length
					kb++
				}
				k = max(k, kb)
			}
			if k == first {
				continue
			}
			newStart := ps.entries.at(k-1).LastOffset + 1
			d := g.part(ps)
			if newStart > d.logStart {
				d.logStart = newStart
				d.trimmed = true
				moved++
			}
		}
	}
	return moved
}

// EnforceRetention runs one retention check now and returns how many
// partitions' log start moved. The service runs it every
// Config.RetentionCheckInterval (janitors.go); tests call it directly.
func (s *Service) EnforceRetention(ctx context.Context) (int, error) {
	o := &op{kind: opRetention}
	if err := s.submit(ctx, o); err != nil {
		return 0, err
	}
	retentionMoves.Add(o.count)
	return o.count, nil
}
