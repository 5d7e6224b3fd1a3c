package controller

import (
	"context"
	"errors"
	"time"

	"sluice.dev/meta"
)

// Janitors: the background jobs through which meta forgets what clients
// no longer need (issue 11) and what retention expired (issue 12). Each
// runs on a ticker until the Service closes (Close waits for them), and
// each job goes through the committer like every write, so the state
// stays exactly what a reopen loads. Tests turn them off
// (Config.noJanitors) and call the jobs directly.
func (s *Service) startJanitors() {
	s.janitor("producer id expiry", min(max(s.cfg.ProducerIDExpiration/16, time.Second), 5*time.Minute),
		func(ctx context.Context) error {
			n, err := s.ExpireProducers(ctx)
			if n > 0 {
				s.log.Info("meta: expired idle producer ids", "count", n, "idle_for", s.cfg.ProducerIDExpiration)
			}
			return err
		})
	s.janitor("retention check", s.cfg.RetentionCheckInterval, func(ctx context.Context) error {
		n, err := s.EnforceRetention(ctx)
		if n > 0 {
			s.log.Debug("meta: retention moved log start offsets", "partitions", n)
		}
		return err
	})
	// Transactions (issue 15): abort those past their timeout. Checked
	// every second: a timeout is at least 1 ms and at most 15 min by
	// default, and the check reads memory only unless one is due.
	s.janitor("transaction timeouts", time.Second, func(ctx context.Context) error {
		if !s.anyTxnDue() {
			return nil
		}
		n, err := s.AbortTimedOutTxns(ctx)
		if n > 0 {
			s.log.Info("meta: aborted transactions past their timeout", "count", n)
		}
		return err
	})
	s.janitor("transactional id expiry", min(max(s.cfg.TransactionalIDExpiration/16, time.Second), 5*time.Minute),
		func(ctx context.Context) error {
			n, err := s.ExpireTxnIDs(ctx)
			if n > 0 {
				s.log.Info("meta: expired idle transactional ids", "count", n, "idle_for", s.cfg.TransactionalIDExpiration)
			}
			return err
		})
	s.janitor("offset expiry", offsetsCheckInterval, func(ctx context.Context) error {
		n, err := s.expireOffsets(ctx, time.Now())
		if n > 0 {
			s.log.Info("meta: offsets expired", "offsets", n)
		}
		return err
	})
}

// janitor runs job every interval until the Service closes; a failure is
// logged and the job runs again at the next tick.
func (s *Service) janitor(what string, every time.Duration, job func(context.Context) error) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.closing:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err := job(ctx)
			cancel()
			if err != nil && !s.closed.Load() && !errors.Is(err, meta.ErrClosed) {
				s.log.Warn("meta: "+what+" failed; retrying", "err", err, "every", every)
			}
		}
	}()
}
