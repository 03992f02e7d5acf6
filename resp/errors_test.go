package resp

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A write whose owner's connection broke mid-call (kill -9: "error reading
// from server: EOF") may have been applied: its error says so. A read's
// error never speaks of writes.
func TestAnUnknownOutcomeIsSaidForWritesOnly(t *testing.T) {
	for _, err := range []error{
		status.Error(codes.Unavailable, "error reading from server: EOF"),
		status.Error(codes.Unavailable, "connection error: desc = \"transport: Error while dialing: read: connection reset by peer\""),
		status.Error(codes.DeadlineExceeded, "context deadline exceeded"),
		status.Error(codes.Canceled, "context canceled"),
	} {
		if _, msg := errorPrefix(err, true); !strings.Contains(msg, "may or may not have been applied") {
			t.Errorf("a write that failed with %v: %q, want it to say the write may or may not have been applied", err, msg)
		}
		if _, msg := errorPrefix(err, false); strings.Contains(msg, "write") {
			t.Errorf("a read that failed with %v: %q speaks of writes", err, msg)
		}
	}
}
