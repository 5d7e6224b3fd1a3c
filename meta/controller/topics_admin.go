package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"sluice.dev/meta"
	"sluice.dev/meta/kv"
)

// Topic administration after creation: DeleteTopics, CreatePartitions and
// config changes. Each is an op through the committer like every write.
//
// In a commit group a changed topic is a new topicState in the group's
// topicsByName/topicsByID overlay (partitions that already existed keep
// their partState, so concurrent segment commits in the same group stay
// consistent); a deleted topic is a nil entry there. Merging swaps them
// into the state; writing rewrites the topic record.
//
// A delete removes every record that names the topic, in memory and in
// the store, in the same transaction: its partitions, index entries,
// producer sequence state and the groups' committed offsets. Load
// treats any record naming a topic it does not know as left over (a
// store written before this rule: see staleRecords in store.go) rather
// than as corruption, so that no sequence of deletes can keep a store
// from opening. Whatever is added later that names a topic must be
// removed here too (TestReopenProperty applies every write op in random
// order and reopens after each). The segment objects of a deleted topic
// stay in the bucket until the garbage collection job removes
// unreferenced data.

// topicChange records one topic change in a group, for writing.
type topicChange struct {
	old, new *topicState // new nil: deleted
}

type topicAdminReq struct {
	deletes    []string
	partitions []meta.PartitionsSpec
	topic      string
	configs    []meta.ConfigChange
	replace    bool // configs replace the whole set (AlterConfigs)
}

func (g *group) changeTopic(old, new *topicState) {
	g.topicChanges = append(g.topicChanges, topicChange{old: old, new: new})
	if new == nil {
		g.topicsByName[old.topic.Name] = nil
		g.topicsByID[old.topic.ID] = nil
		return
	}
	g.topicsByName[new.topic.Name] = new
	g.topicsByID[new.topic.ID] = new
}

func (s *Service) applyTopicAdmin(g *group, r *topicAdminReq) []error {
	switch {
	case r.deletes != nil:
		errs := make([]error, len(r.deletes))
		for i, name := range r.deletes {
			t := g.topicByName(name)
			if t == nil {
				errs[i] = fmt.Errorf("%w: %q", meta.ErrUnknownTopicOrPartition, name)
				continue
			}
			g.changeTopic(t, nil)
		}
		return errs
	case r.partitions != nil:
		errs := make([]error, len(r.partitions))
		for i, sp := range r.partitions {
			t := g.topicByName(sp.Name)
			switch {
			case t == nil:
				errs[i] = fmt.Errorf("%w: %q", meta.ErrUnknownTopicOrPartition, sp.Name)
			case sp.Count <= t.topic.Partitions:
				errs[i] = fmt.Errorf("%w: topic %q has %d partitions; the new count must be larger", meta.ErrInvalidPartitions, sp.Name, t.topic.Partitions)
			case sp.Count > s.cfg.MaxPartitions:
				errs[i] = fmt.Errorf("%w: %d, at most %d", meta.ErrInvalidPartitions, sp.Count, s.cfg.MaxPartitions)
			default:
				if err := s.checkLimits(g, 0, sp.Count-t.topic.Partitions); err != nil {
					errs[i] = fmt.Errorf("topic %q: %w", sp.Name, err)
					continue
				}
				nt := &topicState{topic: copyTopic(t.topic), parts: slices.Clone(t.parts)}
				nt.topic.Partitions = sp.Count
				for p := t.topic.Partitions; p < sp.Count; p++ {
					nt.parts = append(nt.parts, &partState{tp: tpKey{topic: t.topic.ID, part: p}})
				}
				g.changeTopic(t, nt)
			}
		}
		return errs
	default:
		t := g.topicByName(r.topic)
		if t == nil {
			return []error{fmt.Errorf("%w: %q", meta.ErrUnknownTopicOrPartition, r.topic)}
		}
		nt := &topicState{topic: copyTopic(t.topic), parts: t.parts}
		if r.replace || nt.topic.Configs == nil {
			nt.topic.Configs = map[string]string{}
		}
		for _, c := range r.configs {
			if c.Value == nil {
				delete(nt.topic.Configs, c.Name)
			} else {
				nt.topic.Configs[c.Name] = *c.Value
			}
		}
		if len(nt.topic.Configs) == 0 {
			nt.topic.Configs = nil
		}
		g.changeTopic(t, nt)
		return []error{nil}
	}
}

func mergeTopicChangesLocked(st *state, chs []topicChange, nowMs int64) {
	if dead := deletedTopics(chs); len(dead) > 0 {
		// Runs after the group's producer states and offsets were merged,
		// so those written earlier in the group go too.
		for k := range st.prodParts {
			if dead[k.tp.topic] {
				delete(st.prodParts, k)
			}
		}
		for grp, m := range st.offsets {
			for tp := range m {
				if dead[tp.TopicID] {
					delete(m, tp)
				}
			}
			if len(m) == 0 {
				delete(st.offsets, grp)
			}
		}
	}
	for _, c := range chs {
		if c.new == nil {
			if st.topicsByID[c.old.topic.ID] != c.old {
				continue // already replaced or deleted in this group
			}
			delete(st.topicsByID, c.old.topic.ID)
			for _, ps := range c.old.parts {
				delete(st.aborted, ps.tp) // transactions (issue 15)
			}
			for _, ps := range c.old.parts {
				for k := range ps.entries.len() {
					st.objs.unref(ps.entries.at(k), nowMs)
				}
			}
			name := c.old.topic.Name
			if st.topicsByName[name] == c.old {
				delete(st.topicsByName, name)
			}
			// A topic re-created under the same name in this group was
			// inserted into names already; keep exactly one entry while the
			// name is in use, none otherwise.
			i, ok := slices.BinarySearch(st.names, name)
			for ok {
				st.names = slices.Delete(st.names, i, i+1)
				i, ok = slices.BinarySearch(st.names, name)
			}
			if st.topicsByName[name] != nil {
				i, _ := slices.BinarySearch(st.names, name)
				st.names = slices.Insert(st.names, i, name)
			}
			continue
		}
		st.topicsByName[c.new.topic.Name] = c.new
		st.topicsByID[c.new.topic.ID] = c.new
	}
}

// deletedTopics returns the ids of the topics chs delete, or nil.
func deletedTopics(chs []topicChange) map[meta.TopicID]bool {
	var dead map[meta.TopicID]bool
	for _, c := range chs {
		if c.new == nil {
			if dead == nil {
				dead = make(map[meta.TopicID]bool)
			}
			dead[c.old.topic.ID] = true
		}
	}
	return dead
}

// writeTopicChanges runs last in a group's transaction, so that a topic
// deleted in the group also loses the records written earlier in it:
// partitions, index entries, producer states and committed offsets.
// Producer states and offsets are keyed by producer id and group first,
// so they are found through the state (committed, then this group's).
func writeTopicChanges(tx kv.KVTx, g *group) error {
	chs := g.topicChanges
	if dead := deletedTopics(chs); len(dead) > 0 {
		var kbuf [28]byte
		delProd := func(k pidTP) error {
			if !dead[k.tp.topic] {
				return nil
			}
			return tx.Delete(bucketProducers, appendTPKey(be.AppendUint64(kbuf[:0], uint64(k.pid)), k.tp))
		}
		for k := range g.st.prodParts {
			if err := delProd(k); err != nil {
				return err
			}
		}
		for k := range g.prodParts {
			if err := delProd(k); err != nil {
				return err
			}
		}
		var obuf []byte
		for grp, m := range g.st.offsets {
			for tp := range m {
				if dead[tp.TopicID] {
					obuf = offsetKey(obuf[:0], grp, tp)
					if err := tx.Delete(bucketOffsets, obuf); err != nil {
						return err
					}
				}
			}
		}
		for _, c := range g.offsets {
			if !c.all && !c.delete && dead[c.off.TopicID] {
				if err := tx.Delete(bucketOffsets, offsetKey(nil, c.group, c.off.TopicPartition)); err != nil {
					return err
				}
			}
		}
	}
	for _, c := range chs {
		if c.new == nil {
			id := c.old.topic.ID
			if err := tx.Delete(bucketTopics, id[:]); err != nil {
				return err
			}
			for _, b := range [][]byte{bucketPartitions, bucketIndex, kv.BucketTxnAborted} {
				if err := tx.DeletePrefix(b, id[:]); err != nil {
					return err
				}
			}
			continue
		}
		t := c.new.topic
		v, err := json.Marshal(topicRecord{Name: t.Name, ID: t.ID.String(), Partitions: t.Partitions, Configs: t.Configs})
		if err != nil {
			return err
		}
		if err := tx.Put(bucketTopics, t.ID[:], v); err != nil {
			return err
		}
		for p := c.old.topic.Partitions; p < t.Partitions; p++ {
			k := appendTPKey(nil, tpKey{topic: t.ID, part: p})
			old, err := tx.Get(bucketPartitions, k)
			if err != nil {
				return err
			}
			if old == nil {
				v := append([]byte{recFormat}, make([]byte, 16)...) // log start 0, next 0
				if err := tx.Put(bucketPartitions, k, v); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (s *Service) topicAdmin(ctx context.Context, r *topicAdminReq) ([]error, error) {
	o := &op{kind: opTopicAdmin, admin: r}
	if err := s.submit(ctx, o); err != nil {
		return nil, err
	}
	return o.adminErrs, nil
}

// DeleteTopics deletes topics by name; one error per name.
func (s *Service) DeleteTopics(ctx context.Context, names []string) ([]error, error) {
	return s.topicAdmin(ctx, &topicAdminReq{deletes: append(make([]string, 0, len(names)), names...)})
}

// CreatePartitions grows topics; one error per spec.
func (s *Service) CreatePartitions(ctx context.Context, specs []meta.PartitionsSpec) ([]error, error) {
	return s.topicAdmin(ctx, &topicAdminReq{partitions: append(make([]meta.PartitionsSpec, 0, len(specs)), specs...)})
}

// AlterTopicConfigs changes a topic's configs: replace sets the whole
// set (AlterConfigs), otherwise changes apply one by one
// (IncrementalAlterConfigs). Validation is the caller's: meta stores
// what it is given.
func (s *Service) AlterTopicConfigs(ctx context.Context, topic string, changes []meta.ConfigChange, replace bool) error {
	errs, err := s.topicAdmin(ctx, &topicAdminReq{topic: topic, configs: slices.Clone(changes), replace: replace})
	if err != nil {
		return err
	}
	return errs[0]
}
