package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Exit codes: one per class of failure, so that a script can tell a missing
// key from a node it cannot reach.
const (
	exitOK          = 0
	exitFailed      = 1 // any other failure
	exitUsage       = 2 // a wrong command line: the usage is printed
	exitNotFound    = 3 // a key, partition or operation that does not exist
	exitUnavailable = 4 // no node reached, or no answer in time
	exitDenied      = 5 // a missing or wrong token or certificate
	exitRefused     = 6 // the cluster refused the request: invalid, a condition not met, over a limit
)

const exitCodesHelp = `Exit codes: 0 success; 1 other failures; 2 a wrong command line (the usage
is printed); 3 not found (a key, partition or operation); 4 no node reached or
no answer in time; 5 a missing or wrong token or certificate; 6 refused by the
cluster (invalid request, a condition not met, over a limit).`

// exitError gives an error its exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError marks err as a wrong command line.
func usageError(err error) error { return &exitError{exitUsage, err} }

// notFound marks err as "does not exist".
func notFound(err error) error { return &exitError{exitNotFound, err} }

// markUsageErrors makes every command's argument and flag errors usage
// errors.
func markUsageErrors(cmd *cobra.Command) {
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	if args := cmd.Args; args != nil {
		cmd.Args = func(c *cobra.Command, a []string) error {
			if err := args(c, a); err != nil {
				return usageError(err)
			}
			return nil
		}
	}
	// A group of commands (partitions, cluster) refuses an unknown
	// subcommand, as the root does; it used to print its help and exit 0,
	// so a script with a typo succeeded.
	if cmd.HasSubCommands() && cmd.Run == nil && cmd.RunE == nil && cmd.HasParent() {
		cmd.Args = func(c *cobra.Command, a []string) error {
			if len(a) > 0 {
				return usageError(fmt.Errorf("unknown command %q for %q", a[0], c.CommandPath()))
			}
			return nil
		}
		cmd.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	}
	for _, sub := range cmd.Commands() {
		markUsageErrors(sub)
	}
}

// report prints err as "sluice: <message>" (with the usage for a wrong
// command line) and returns its exit code.
func report(w io.Writer, cmd *cobra.Command, err error) int {
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	if code == exitFailed && (strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "required flag")) {
		code = exitUsage
	}
	fmt.Fprintf(w, "sluice: %s\n", message(err))
	if code == exitUsage && cmd != nil {
		fmt.Fprintf(w, "\n%s", cmd.UsageString())
	}
	return code
}

func exitCode(err error) int {
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return exitUnavailable
	}
	st, ok := status.FromError(err)
	if !ok {
		// A wrapped status (fmt.Errorf("...: %w", st.Err())).
		var se interface{ GRPCStatus() *status.Status }
		if !errors.As(err, &se) {
			return exitFailed
		}
		st = se.GRPCStatus()
	}
	switch st.Code() {
	case codes.NotFound:
		return exitNotFound
	case codes.Unavailable, codes.DeadlineExceeded:
		return exitUnavailable
	case codes.Unauthenticated, codes.PermissionDenied:
		return exitDenied
	case codes.InvalidArgument, codes.FailedPrecondition, codes.Aborted, codes.AlreadyExists, codes.OutOfRange, codes.ResourceExhausted:
		return exitRefused
	}
	return exitFailed
}

// message is err for a person: a gRPC answer without its "rpc error: code =
// ... desc =" wrapping (the code's name where the message alone would not
// say it), context errors in words.
func message(err error) string {
	if st, ok := status.FromError(err); ok && st.Code() != codes.OK && !isWrapped(err) {
		switch st.Code() {
		case codes.DeadlineExceeded:
			return "no answer before the deadline (--timeout): " + st.Message()
		case codes.Unauthenticated:
			if strings.HasPrefix(st.Message(), "control plane") {
				return st.Message() + " (give the token with --control-token-file or $SLUICE_CONTROL_TOKEN)"
			}
			return st.Message() + " (give the token with --data-token-file or $SLUICE_DATA_TOKEN)"
		}
		return st.Message()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer before the deadline (--timeout): " + err.Error()
	}
	return err.Error()
}

// isWrapped says whether err is a status error inside other text, whose own
// Error then reads well already.
func isWrapped(err error) bool {
	_, direct := err.(interface{ GRPCStatus() *status.Status })
	return !direct
}
