package jobs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"sluice.dev/meta"
	"sluice.dev/objstore"
)

// orphanPage is how many keys one CheckOrphans call offers meta: S3 lists
// 1,000 keys a page, and a page's worth keeps each call small.
const orphanPage = 1000

// deleteDead deletes the objects of a DeleteJob (meta named them: dead
// for the grace period) and reports which are gone. A missing object is
// gone; an object whose delete failed is left for the next job.
func (r *Runner) deleteDead(ctx context.Context, job meta.Job) error {
	dj := job.Delete
	if dj == nil {
		return errors.New("delete job without objects")
	}
	deleted, bytes, err := r.deleteObjects(ctx, dj.Objects)
	m := stats[meta.JobDelete]
	m.objectsDeleted.Add(len(deleted))
	m.bytesDeleted.Add(int(bytes))
	if len(deleted) > 0 {
		// Report what is gone even when some deletes failed, so meta
		// forgets those and leases only the rest again.
		if cerr := r.cfg.Meta.CompleteDelete(ctx, meta.DeleteResult{JobID: job.ID, Deleted: deleted}); cerr != nil {
			return errors.Join(err, fmt.Errorf("complete: %w", cerr))
		}
	}
	return err
}

func (r *Runner) deleteObjects(ctx context.Context, objs []meta.ObjectRef) ([]meta.SegmentID, int64, error) {
	var (
		mu      sync.Mutex
		deleted []meta.SegmentID
		bytes   int64
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.cfg.ReadConcurrency)
	for _, o := range objs {
		g.Go(func() error {
			// Only keys that are object keys of the id meta named: a
			// wrong key in a job must never delete someone else's file.
			if id, ok := meta.ParseObjectKey(o.Key); !ok || id != o.ID {
				return fmt.Errorf("refusing to delete %q: not the object key of %s", o.Key, o.ID)
			}
			if err := r.cfg.Store.Delete(gctx, o.Key); err != nil {
				return fmt.Errorf("delete %s: %w", o.Key, err)
			}
			mu.Lock()
			deleted = append(deleted, o.ID)
			bytes += o.Size
			mu.Unlock()
			return nil
		})
	}
	err := g.Wait()
	return deleted, bytes, err
}

// collectOrphans lists the bucket under the job's prefix, offers meta
// the objects older than MinAge by the store's clock a page at a time,
// and deletes those meta returns (objects it never knew, too old for any
// commit to claim).
func (r *Runner) collectOrphans(ctx context.Context, job meta.Job) error {
	oj := job.Orphans
	if oj == nil {
		return errors.New("orphan job without a prefix")
	}
	m := stats[meta.JobOrphans]
	res := meta.OrphansResult{JobID: job.ID}
	sizes := make(map[string]int64, orphanPage)
	var page []string
	flush := func() error {
		if len(page) == 0 {
			return nil
		}
		orphans, err := r.cfg.Meta.CheckOrphans(ctx, job.ID, page)
		if err != nil {
			return fmt.Errorf("check orphans: %w", err)
		}
		refs := make([]meta.ObjectRef, 0, len(orphans))
		for _, k := range orphans {
			id, ok := meta.ParseObjectKey(k)
			size, offered := sizes[k]
			if !ok || !offered {
				return fmt.Errorf("meta named %q, which this pass did not offer", k)
			}
			refs = append(refs, meta.ObjectRef{ID: id, Key: k, Size: size})
		}
		deleted, bytes, err := r.deleteObjects(ctx, refs)
		res.Deleted += int64(len(deleted))
		res.DeletedBytes += bytes
		m.orphansFound.Add(len(orphans))
		m.objectsDeleted.Add(len(deleted))
		m.bytesDeleted.Add(int(bytes))
		page = page[:0]
		clear(sizes)
		return err
	}
	cutoff := time.Now().Add(-oj.MinAge)
	err := r.cfg.Store.List(ctx, oj.Prefix, func(o objstore.ObjectInfo) error {
		res.Listed++
		m.listed.Inc()
		if _, ok := meta.ParseObjectKey(o.Key); !ok {
			return nil // not ours
		}
		if !o.ModTime.IsZero() && o.ModTime.After(cutoff) {
			return nil // young by the store's clock: maybe still being committed
		}
		page = append(page, o.Key)
		sizes[o.Key] = o.Size
		if len(page) == orphanPage {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return err
	}
	if err := r.cfg.Meta.CompleteOrphans(ctx, res); err != nil {
		return fmt.Errorf("complete: %w", err)
	}
	if res.Deleted > 0 {
		r.log.Info("jobs: deleted orphaned objects", "objects", res.Deleted, "bytes", res.DeletedBytes, "listed", res.Listed)
	}
	return nil
}
