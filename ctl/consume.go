package ctl

// sluice consume TOPIC...: print records, kcat-style or as JSON lines.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func consume(ctx context.Context, e *env, args []string) (err error) {
	fs := e.flags("consume")
	group := fs.String("group", "", "consume as this consumer group: partitions shared with its other members, progress committed (exactly the records printed); empty: read partitions directly and commit nothing")
	count := fs.Int("n", 0, "exit after this many records; 0: no limit (until interrupted, or -e)")
	start := fs.String("o", "beginning", "where to start: beginning, end, an offset N, -N (N records before the end of each partition), or @T (the first record at or after T, Unix milliseconds or RFC 3339); with --group only beginning or end, for partitions the group has not committed")
	partitions := fs.String("p", "", "partitions to read, comma-separated (not with --group); empty: all")
	format := fs.String("f", `%s\n`, "record format (with --format table), as kcat's -f: %t topic, %p partition, %o offset, %k key, %K key length, %s value, %S value length, %T timestamp in Unix ms, %h headers (k=v,...), %% percent; escapes \\n \\r \\t \\0 \\\\")
	exitAtEnd := fs.Bool("e", false, "exit once every partition is read up to the end it had when the command started (not with --group)")
	readCommitted := fs.Bool("read-committed", false, "skip records of aborted transactions and wait for open ones (isolation level read_committed)")
	topics, err := e.parse(fs, args, "the topic to consume", 1, -1)
	if err != nil {
		return err
	}
	if *count < 0 {
		return fmt.Errorf("-n must be 0 (no limit) or more, got %d", *count)
	}
	recFmt, err := parseRecordFormat(*format)
	if err != nil {
		return err
	}
	// Control records (transaction markers) are asked for so that -e sees
	// the offsets they take: a partition whose last record is a marker
	// would otherwise never look read to its end. They are not printed.
	opts := []kgo.Opt{kgo.FetchMaxWait(min(e.conn.timeout, 500*time.Millisecond)), kgo.KeepControlRecords()}
	if *readCommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}

	// The topics must exist: a consumer would wait for them forever.
	// Without a group the partitions and their first offsets are resolved
	// here, exactly, so -e knows where each partition ends.
	adminCl, err := e.client(ctx)
	if err != nil {
		return err
	}
	var pending map[string]map[int32]int64 // -e: end offset still to reach
	if *group != "" {
		for _, t := range topics {
			if err := checkTopic(ctx, e, adminCl, t, -1); err != nil {
				return err
			}
		}
		if *partitions != "" || *exitAtEnd {
			return errors.New("-p and -e read partitions directly: leave out --group (a group's members share partitions as the coordinator assigns them)")
		}
		var reset kgo.Offset
		switch *start {
		case "beginning", "earliest", "start":
			reset = kgo.NewOffset().AtStart()
		case "end", "latest":
			reset = kgo.NewOffset().AtEnd()
		default:
			return fmt.Errorf("-o with --group must be beginning or end (where partitions without a committed offset start), got %q; move the group's offsets with `sluice group reset-offsets`", *start)
		}
		opts = append(opts, kgo.ConsumerGroup(*group), kgo.ConsumeTopics(topics...),
			kgo.ConsumeResetOffset(reset), kgo.AutoCommitMarks())
	} else {
		offsets, ends, err := resolveStart(ctx, e, kadm.NewClient(adminCl), topics, *partitions, *start)
		if err != nil {
			return err
		}
		opts = append(opts, kgo.ConsumePartitions(offsets))
		if *exitAtEnd {
			pending = map[string]map[int32]int64{}
			for t, ps := range offsets {
				for p, o := range ps {
					if end := ends[t][p]; o.EpochOffset().Offset < end {
						if pending[t] == nil {
							pending[t] = map[int32]int64{}
						}
						pending[t][p] = end
					}
				}
			}
		}
	}
	cl, err := e.client(ctx, opts...)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(e.Out, 64<<10)
	var (
		n   int
		buf []byte
	)
	reached := func() bool {
		return (*count > 0 && n >= *count) || (pending != nil && len(pending) == 0)
	}
	defer func() {
		if *group != "" {
			// Commit exactly what was printed, before Close leaves the group.
			cctx, cancel := e.bounded(context.WithoutCancel(ctx))
			defer cancel()
			if cerr := cl.CommitMarkedOffsets(cctx); cerr != nil && err == nil {
				err = explain(cerr, groupSubject(*group), "")
			}
		}
	}()
	for !reached() {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break // interrupted: a normal end for a tail
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) {
			if ferr == nil && !isContextErr(err) && !errors.Is(err, kgo.ErrClientClosed) {
				ferr = explain(err, topicSubject(t), "")
			}
		})
		if ferr != nil {
			return ferr
		}
		iter := fetches.RecordIter()
		for !iter.Done() && !reached() {
			r := iter.Next()
			if r.Attrs.IsControl() {
				if *group != "" {
					cl.MarkCommitRecords(r)
				}
				reachedEnd(pending, r)
				continue
			}
			if e.json() {
				b, err := json.Marshal(toJSON(r))
				if err != nil {
					return err
				}
				buf = append(append(buf[:0], b...), '\n')
			} else {
				buf = recFmt.append(buf[:0], r)
			}
			if _, err := w.Write(buf); err != nil {
				return err
			}
			n++
			if *group != "" {
				cl.MarkCommitRecords(r)
			}
			reachedEnd(pending, r)
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return w.Flush()
}

// reachedEnd takes r's partition off pending (for -e) once r is at or
// past the end offset the partition had at start.
func reachedEnd(pending map[string]map[int32]int64, r *kgo.Record) {
	if end, ok := pending[r.Topic][r.Partition]; ok && r.Offset+1 >= end {
		delete(pending[r.Topic], r.Partition)
		if len(pending[r.Topic]) == 0 {
			delete(pending, r.Topic)
		}
	}
}

// resolveStart turns -p and -o into an exact first offset per partition,
// and returns each partition's end offset as of now (for -e).
func resolveStart(ctx context.Context, e *env, adm *kadm.Client, topics []string, partFlag, start string) (map[string]map[int32]kgo.Offset, map[string]map[int32]int64, error) {
	rctx, cancel := e.bounded(ctx)
	defer cancel()
	tds, err := adm.ListTopics(rctx, topics...)
	if err != nil {
		return nil, nil, explain(err, subject{}, "")
	}
	var only []int32
	if partFlag != "" {
		for _, s := range strings.Split(partFlag, ",") {
			p, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
			if err != nil || p < 0 {
				return nil, nil, fmt.Errorf("-p %q: want partition numbers, comma-separated", partFlag)
			}
			only = append(only, int32(p))
		}
	}
	starts, err := adm.ListStartOffsets(rctx, topics...)
	if err != nil {
		return nil, nil, explain(err, subject{}, "")
	}
	ends, err := adm.ListEndOffsets(rctx, topics...)
	if err != nil {
		return nil, nil, explain(err, subject{}, "")
	}
	var byTime kadm.ListedOffsets
	var rel int64 = -1
	var at int64 = -1
	switch {
	case start == "beginning" || start == "earliest" || start == "start" || start == "end" || start == "latest":
	case strings.HasPrefix(start, "@"):
		ms, err := parseMillis(start[1:])
		if err != nil {
			return nil, nil, fmt.Errorf("-o %s: %w", start, err)
		}
		if byTime, err = adm.ListOffsetsAfterMilli(rctx, ms, topics...); err != nil {
			return nil, nil, explain(err, subject{}, "")
		}
	case strings.HasPrefix(start, "-"):
		n, err := strconv.ParseInt(start[1:], 10, 64)
		if err != nil || n <= 0 {
			return nil, nil, fmt.Errorf("-o %s: -N wants a positive count", start)
		}
		rel = n
	default:
		n, err := strconv.ParseInt(start, 10, 64)
		if err != nil || n < 0 {
			return nil, nil, fmt.Errorf("-o must be beginning, end, an offset N, -N or @T, got %q", start)
		}
		at = n
	}
	offsets := map[string]map[int32]kgo.Offset{}
	endsOut := map[string]map[int32]int64{}
	for _, t := range topics {
		d, ok := tds[t]
		if !ok || d.Err != nil {
			derr := d.Err
			if !ok {
				derr = errUnknownTopic
			}
			return nil, nil, explain(derr, topicSubject(t), "")
		}
		ps := only
		if ps == nil {
			for p := range d.Partitions {
				ps = append(ps, p)
			}
		}
		offsets[t], endsOut[t] = map[int32]kgo.Offset{}, map[int32]int64{}
		for _, p := range ps {
			if _, ok := d.Partitions[p]; !ok {
				return nil, nil, fmt.Errorf("topic %q has no partition %d (it has %d); fix -p", t, p, len(d.Partitions))
			}
			s, _ := starts.Lookup(t, p)
			en, _ := ends.Lookup(t, p)
			if err := errors.Join(s.Err, en.Err); err != nil {
				return nil, nil, explain(err, topicSubject(t), "")
			}
			var o int64
			switch {
			case byTime != nil:
				o = en.Offset
				if bt, ok := byTime.Lookup(t, p); ok && bt.Err == nil && bt.Offset >= 0 {
					o = bt.Offset
				}
			case rel > 0:
				o = max(s.Offset, en.Offset-rel)
			case at >= 0:
				o = at
			case start == "end" || start == "latest":
				o = en.Offset
			default:
				o = s.Offset
			}
			offsets[t][p] = kgo.NewOffset().At(o)
			endsOut[t][p] = en.Offset
		}
	}
	return offsets, endsOut, nil
}
