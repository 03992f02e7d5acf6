package server

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/partition"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/registry"
	"github.com/sluicedb/sluice/snapshot"
	"github.com/sluicedb/sluice/wal"
)

// Every error sluice's packages return maps to its code here, in the one
// place that maps them; "not applied" answers carry the NotApplied detail
// a client retries on, and only those.
func TestEverySentinelHasItsCode(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("context: %w", err) }
	cases := []struct {
		err        error
		code       codes.Code
		notApplied bool
	}{
		{&partition.VersionMismatchError{Key: []byte("k"), Expected: 1, Current: 2, Entry: -1}, codes.Aborted, false},
		{&partition.NotIntegerError{Key: []byte("k"), Reason: "x"}, codes.FailedPrecondition, false},
		{fmt.Errorf("%w: %w", partition.ErrAppendFailed, wal.ErrCommitUnknown), codes.Unknown, false},
		{fmt.Errorf("%w: %w", partition.ErrStopped, wal.ErrCommitUnknown), codes.Unknown, false},
		{fmt.Errorf("%w: %w", partition.ErrAppendFailed, wal.ErrNotCommitted), codes.Unavailable, true},
		{partition.ErrStopped, codes.Unavailable, true},
		{partition.ErrDeposed, codes.Unavailable, true},
		{&partition.RestoringError{Partition: 1, Percent: 5}, codes.Unavailable, true},
		{partition.ErrInboxFull, codes.ResourceExhausted, true},
		{partition.ErrOverBudget, codes.ResourceExhausted, true},
		{partition.ErrWrongPartition, codes.FailedPrecondition, false},
		{fmt.Errorf("%w: empty key", kv.ErrInvalid), codes.InvalidArgument, false},
		{registry.ErrNotFound, codes.NotFound, false},
		{registry.ErrOverlap, codes.InvalidArgument, false},
		{registry.ErrExists, codes.InvalidArgument, false},
		{registry.ErrUnknownNode, codes.InvalidArgument, false},
		{registry.ErrInvalid, codes.InvalidArgument, false},
		{registry.ErrNoNodes, codes.FailedPrecondition, false},
		{registry.ErrCannotCarry, codes.FailedPrecondition, false},
		{registry.ErrIDsExhausted, codes.FailedPrecondition, false},
		{snapshot.ErrOutsideRoot, codes.InvalidArgument, false},
		{ErrNotHeld, codes.FailedPrecondition, false},
		{context.DeadlineExceeded, codes.DeadlineExceeded, false},
		{context.Canceled, codes.Canceled, false},
		{errors.New("something else"), codes.Internal, false},
	}
	for _, tc := range cases {
		for _, err := range []error{tc.err, wrap(tc.err)} {
			st := status.Convert(toStatus(err))
			hasDetail := false
			for _, d := range st.Details() {
				if _, ok := d.(*sluicev1.NotApplied); ok {
					hasDetail = true
				}
			}
			if st.Code() != tc.code || hasDetail != tc.notApplied {
				t.Errorf("%v: %v (NotApplied %v), want %v (NotApplied %v)", err, st.Code(), hasDetail, tc.code, tc.notApplied)
			}
		}
	}
	if toStatus(nil) != nil {
		t.Error("toStatus(nil) is not nil")
	}
}
