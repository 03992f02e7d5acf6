package main

import (
	"context"
	"net"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/sluicedb/sluice/client"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// callControl makes a control-plane call, waiting out the control plane's
// rate limit: a call it refused did nothing (NotApplied), and it says when
// to try again (RetryInfo). A script of several control commands in a row
// gets every answer, later, not a ResourceExhausted in place of most of them.
func callControl(ctx context.Context, addr string, call func(context.Context) (proto.Message, error)) (proto.Message, error) {
	for {
		msg, err := call(ctx)
		wait, again := rateLimited(err)
		if !again {
			return msg, explainControl(addr, err)
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
	}
}

// rateLimited says whether err is the control plane's rate limit, and how
// long it asks the caller to wait.
func rateLimited(err error) (time.Duration, bool) {
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		return 0, false
	}
	wait, notApplied := 200*time.Millisecond, false
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *sluicev1.NotApplied:
			notApplied = true
		case *errdetails.RetryInfo:
			wait = d.GetRetryDelay().AsDuration()
		}
	}
	return min(max(wait, 10*time.Millisecond), 5*time.Second), notApplied
}

// explainControl turns an Unavailable answer from a control port that could
// not be reached at all into a *client.ConnectError naming why.
func explainControl(addr string, err error) error {
	if status.Code(err) != codes.Unavailable {
		return err
	}
	conn, derr := net.DialTimeout("tcp", addr, 2*time.Second)
	if derr != nil {
		return &client.ConnectError{Addr: addr, Err: derr}
	}
	conn.Close()
	return err
}
