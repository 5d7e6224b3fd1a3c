package rpc

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"

	"sluice.dev/meta"
	pb "sluice.dev/meta/metapb"
)

// sentinels of package meta by name. TestEverySentinelHasACode keeps
// this list complete; errors.go gives each a wire code.
var metaSentinels = map[string]error{
	"ErrUnknownTopicOrPartition": meta.ErrUnknownTopicOrPartition,
	"ErrTopicExists":             meta.ErrTopicExists,
	"ErrInvalidTopic":            meta.ErrInvalidTopic,
	"ErrInvalidPartitions":       meta.ErrInvalidPartitions,
	"ErrOffsetOutOfRange":        meta.ErrOffsetOutOfRange,
	"ErrInvalidProducerEpoch":    meta.ErrInvalidProducerEpoch,
	"ErrUnsupported":             meta.ErrUnsupported,
	"ErrClosed":                  meta.ErrClosed,
	"ErrUnavailable":             meta.ErrUnavailable,
	"ErrInvalidRequest":          meta.ErrInvalidRequest,
	"ErrUnauthenticated":         meta.ErrUnauthenticated,
	"ErrCorrupt":                 meta.ErrCorrupt,
	"ErrNotLeader":               meta.ErrNotLeader,
	"ErrUnknownMemberID":         meta.ErrUnknownMemberID,
	"ErrIllegalGeneration":       meta.ErrIllegalGeneration,
	"ErrRebalanceInProgress":     meta.ErrRebalanceInProgress,
	"ErrMemberIDRequired":        meta.ErrMemberIDRequired,
	"ErrInconsistentProtocol":    meta.ErrInconsistentProtocol,
	"ErrInvalidSessionTimeout":   meta.ErrInvalidSessionTimeout,
	"ErrGroupNotEmpty":           meta.ErrGroupNotEmpty,
	"ErrGroupIDNotFound":         meta.ErrGroupIDNotFound,
	"ErrFencedInstanceID":        meta.ErrFencedInstanceID,
	"ErrInvalidGroupID":          meta.ErrInvalidGroupID,
	"ErrGroupSubscribedToTopic":  meta.ErrGroupSubscribedToTopic,
	"ErrLimit":                   meta.ErrLimit,
	"ErrGroupMaxSizeReached":     meta.ErrGroupMaxSizeReached,
	"ErrTooManyGroups":           meta.ErrTooManyGroups,
	"ErrOffsetMetadataTooLarge":  meta.ErrOffsetMetadataTooLarge,
	"ErrSegmentExpired":          meta.ErrSegmentExpired,
	"ErrJobLost":                 meta.ErrJobLost,
	"ErrInvalidACL":              meta.ErrInvalidACL, // issue 14
	// SASL (issue 14)
	"ErrScramUserNotFound": meta.ErrScramUserNotFound,
	"ErrScramUnacceptable": meta.ErrScramUnacceptable,
	"ErrScramMechanism":    meta.ErrScramMechanism,
	// KIP-848 consumer groups.
	"ErrFencedMemberEpoch":        meta.ErrFencedMemberEpoch,
	"ErrStaleMemberEpoch":         meta.ErrStaleMemberEpoch,
	"ErrUnsupportedAssignor":      meta.ErrUnsupportedAssignor,
	"ErrUnreleasedInstanceID":     meta.ErrUnreleasedInstanceID,
	"ErrInvalidRegularExpression": meta.ErrInvalidRegularExpression,

	// Transactions (issue 15).
	"ErrInvalidTxnState":          meta.ErrInvalidTxnState,
	"ErrProducerFenced":           meta.ErrProducerFenced,
	"ErrTransactionalIDNotFound":  meta.ErrTransactionalIDNotFound,
	"ErrInvalidTxnTimeout":        meta.ErrInvalidTxnTimeout,
	"ErrInvalidProducerIDMapping": meta.ErrInvalidProducerIDMapping,
	"ErrOperationNotAttempted":    meta.ErrOperationNotAttempted,
}

// TestEverySentinelHasACode reads package meta's source for exported
// Err variables: a new one must be added to metaSentinels above and to
// codeTable in errors.go, or it would cross the network as ERR_UNKNOWN
// and errors.Is would fail on the agent.
func TestEverySentinelHasACode(t *testing.T) {
	files, err := filepath.Glob("../*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("meta sources: %v", err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, sp := range gd.Specs {
				for _, n := range sp.(*ast.ValueSpec).Names {
					if !strings.HasPrefix(n.Name, "Err") || !n.IsExported() {
						continue
					}
					if _, ok := metaSentinels[n.Name]; !ok {
						t.Errorf("meta.%s (%s) has no wire code: add it to codeTable in errors.go and to metaSentinels here", n.Name, fset.Position(n.Pos()))
					}
				}
			}
		}
	}
	for name, s := range metaSentinels {
		if s == meta.ErrClosed {
			continue
		}
		found := false
		for _, e := range codeTable {
			found = found || e.err == s
		}
		if !found {
			t.Errorf("meta.%s is not in codeTable", name)
		}
	}
}

// TestErrorRoundTrip: every sentinel, wrapped with detail, comes back
// with errors.Is intact and the server's message, in band and as an RPC
// status.
func TestErrorRoundTrip(t *testing.T) {
	for name, s := range metaSentinels {
		err := fmt.Errorf("%w: detail of %s", s, name)
		got := decodeErr(encodeErr(err))
		if s == meta.ErrClosed {
			// The cluster closing on the server is not the client closed.
			if errors.Is(got, meta.ErrClosed) || !errors.Is(got, meta.ErrUnavailable) || !strings.Contains(got.Error(), err.Error()) {
				t.Errorf("%s: in band as %v", name, got)
			}
			continue
		}
		if !errors.Is(got, s) || got.Error() != err.Error() {
			t.Errorf("%s: in band as %q (is %v)", name, got, errors.Is(got, s))
		}
		if st := fromStatus(statusErr(err)); !errors.Is(st, s) {
			t.Errorf("%s: as a status %q", name, st)
		}
	}
	if got := decodeErr(encodeErr(meta.ErrNotLeader)); !errors.Is(got, meta.ErrUnavailable) {
		t.Errorf("ErrNotLeader lost ErrUnavailable: %v", got)
	}
	for _, err := range []error{context.Canceled, context.DeadlineExceeded} {
		if got := decodeErr(encodeErr(err)); !errors.Is(got, err) {
			t.Errorf("%v in band as %v", err, got)
		}
	}
	plain := errors.New("something else entirely")
	if e := encodeErr(plain); e.Code != pb.ErrorCode_ERR_UNKNOWN {
		t.Errorf("plain error coded %v", e.Code)
	}
	// A code from a newer server: a plain error with its message.
	got := decodeErr(&pb.Error{Code: 999, Message: "meta: something new"})
	if got == nil || got.Error() != "meta: something new" || errors.Unwrap(got) != nil {
		t.Errorf("unknown code decoded as %#v", got)
	}
	if decodeErr(&pb.Error{}) != nil || decodeErr(nil) != nil || encodeErr(nil) != nil {
		t.Error("no error must stay no error")
	}
	if errs := decodeErrs(encodeErrs([]error{nil, meta.ErrTopicExists, nil})); len(errs) != 3 || errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], meta.ErrTopicExists) {
		t.Errorf("per-item errors: %v", errs)
	}
}
