package server

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"sluice.dev/meta"
	"sluice.dev/pipeline"
)

// TestErrorCodeSegmentRefused: a segment meta refused as too old is
// answered with a code every client retries (NOT_ENOUGH_REPLICAS: not
// written), and after an unknown outcome with REQUEST_TIMED_OUT.
func TestErrorCodeSegmentRefused(t *testing.T) {
	refused := fmt.Errorf("%w: segment x: %w", pipeline.ErrSegmentRefused, meta.ErrSegmentExpired)
	if got := errorCode(refused); got != kerr.NotEnoughReplicas.Code {
		t.Fatalf("refused segment: code %d, want NOT_ENOUGH_REPLICAS", got)
	}
	if !kerr.ErrorForCode(errorCode(refused)).(*kerr.Error).Retriable {
		t.Fatal("the refused segment's code is not retriable")
	}
	unknown := fmt.Errorf("%w: %w", pipeline.ErrCommit, meta.ErrSegmentExpired)
	if got := errorCode(unknown); got != kerr.RequestTimedOut.Code {
		t.Fatalf("refusal after an unknown outcome: code %d, want REQUEST_TIMED_OUT", got)
	}
}
