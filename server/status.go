package server

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/partition"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/registry"
	"github.com/sluicedb/sluice/router"
	"github.com/sluicedb/sluice/snapshot"
	"github.com/sluicedb/sluice/wal"
)

// ErrNotHeld: a call about a partition reached a node that does not hold it
// (FailedPrecondition).
var ErrNotHeld = errors.New("partition not held by this node")

// toStatus maps sluice's errors to gRPC codes: the one place that does.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Internal
	var mismatch *partition.VersionMismatchError
	var notInt *partition.NotIntegerError
	switch {
	case errors.As(err, &mismatch):
		code = codes.Aborted
	case errors.As(err, &notInt):
		code = codes.FailedPrecondition
	case errors.Is(err, wal.ErrCommitUnknown):
		// Not Unavailable: a client must not blindly retry a write that may
		// already be applied.
		return status.Error(codes.Unknown, err.Error()+"; the write may or may not have been applied")
	case errors.Is(err, kv.ErrInvalid):
		code = codes.InvalidArgument
	case errors.Is(err, partition.ErrInboxFull), errors.Is(err, partition.ErrOverBudget):
		code = codes.ResourceExhausted
	case partition.IsUnavailable(err):
		code = codes.Unavailable
	case errors.Is(err, partition.ErrWrongPartition), errors.Is(err, ErrNotHeld), errors.Is(err, registry.ErrNoNodes),
		errors.Is(err, registry.ErrIDsExhausted), errors.Is(err, registry.ErrCannotCarry):
		code = codes.FailedPrecondition
	case errors.Is(err, registry.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, registry.ErrOverlap), errors.Is(err, registry.ErrExists), errors.Is(err, registry.ErrUnknownNode),
		errors.Is(err, registry.ErrInvalid), errors.Is(err, snapshot.ErrOutsideRoot):
		code = codes.InvalidArgument
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	}
	if code == codes.Unavailable || code == codes.ResourceExhausted {
		return notApplied(code, err.Error())
	}
	return status.Error(code, err.Error())
}

// notApplied answers code with a NotApplied detail: the server knows the
// request was not applied, so a client may send it again.
func notApplied(code codes.Code, msg string) error {
	st, err := status.New(code, msg).WithDetails(&sluicev1.NotApplied{})
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	return st.Err()
}

func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

// badNode answers a request for a key another partition or node owns.
func badNode(slot int32, p router.Partition, why string) error {
	st := status.New(codes.FailedPrecondition, fmt.Sprintf("%s: slot %d is owned by partition %d on node %s (%s)", why, slot, p.ID, p.Node, p.Addr))
	st, err := st.WithDetails(&sluicev1.BadNode{Slot: slot, Partition: p.ID, Epoch: p.Epoch, Node: p.Node, Addr: p.Addr})
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	return st.Err()
}

func outOfRange(format string, args ...any) error {
	return status.Errorf(codes.OutOfRange, format, args...)
}

// resumeFrom is the UNAVAILABLE that ends a stream (a Watch) with the
// session token to resume from in its details.
func resumeFrom(msg string, token *sluicev1.Session) error {
	st, err := status.New(codes.Unavailable, msg).WithDetails(token)
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	return st.Err()
}

// keyError is the per-key form of a call's error status.
func keyError(err error) *sluicev1.KeyError {
	st := status.Convert(err)
	ke := &sluicev1.KeyError{Code: int32(st.Code()), Message: st.Message()}
	for _, d := range st.Details() {
		if bn, ok := d.(*sluicev1.BadNode); ok {
			ke.BadNode = bn
		}
	}
	return ke
}
