package client

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

func withDetail(code codes.Code, msg string, d protoadapt.MessageV1) error {
	st, err := status.New(code, msg).WithDetails(d)
	if err != nil {
		panic(err)
	}
	return st.Err()
}

// Only answers that say nothing was applied are retried: never a permanent
// one such as grpc-go's own "received message larger than max".
func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		err         error
		write, read bool
	}{
		{status.Error(codes.ResourceExhausted, "grpc: received message larger than max (9437200 vs. 8388608)"), false, false},
		{withDetail(codes.ResourceExhausted, "inbox full", &sluicev1.NotApplied{}), true, true},
		{withDetail(codes.Unavailable, "restoring", &sluicev1.NotApplied{}), true, true},
		{withDetail(codes.FailedPrecondition, "moved", &sluicev1.BadNode{}), true, true},
		{status.Error(codes.Unavailable, "connection reset"), false, true},
		{status.Error(codes.InvalidArgument, "over the limit"), false, false},
		{status.Error(codes.Unauthenticated, "a valid bearer token is required"), false, false},
		{status.Error(codes.Unknown, "outcome unknown"), false, false},
	} {
		if got := retryable(tc.err, false); got != tc.write {
			t.Errorf("write %v: retryable %v, want %v", tc.err, got, tc.write)
		}
		if got := retryable(tc.err, true); got != tc.read {
			t.Errorf("read %v: retryable %v, want %v", tc.err, got, tc.read)
		}
	}
}

// A GetMany key is asked again only when its error may pass; a watch
// resumes only after the node or the connection went away.
func TestRetryableKeyAndWatch(t *testing.T) {
	for _, tc := range []struct {
		e    *sluicev1.KeyError
		want bool
	}{
		{&sluicev1.KeyError{Code: int32(codes.FailedPrecondition), BadNode: &sluicev1.BadNode{Node: "n2"}}, true},
		{&sluicev1.KeyError{Code: int32(codes.FailedPrecondition)}, false},
		{&sluicev1.KeyError{Code: int32(codes.Unavailable)}, true},
		{&sluicev1.KeyError{Code: int32(codes.ResourceExhausted)}, true},
		{&sluicev1.KeyError{Code: int32(codes.Internal)}, false},
	} {
		if got := retryableKey(tc.e); got != tc.want {
			t.Errorf("retryableKey(%v) = %v", tc.e, got)
		}
	}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{status.Error(codes.Unavailable, "error reading from server: EOF"), true},
		{withDetail(codes.ResourceExhausted, "64 watches", &sluicev1.NotApplied{}), true},
		{status.Error(codes.InvalidArgument, "a token of cluster x"), false},
		{status.Error(codes.OutOfRange, "compacted"), false},
		{status.Error(codes.Unauthenticated, "token"), false},
	} {
		if got := watchRetryable(tc.err); got != tc.want {
			t.Errorf("watchRetryable(%v) = %v", tc.err, got)
		}
	}
}
