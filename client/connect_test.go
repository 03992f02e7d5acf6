package client

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Issue 28.1: a node that cannot be reached fails every call with a
// *ConnectError naming the address and the cause, without retrying until the
// deadline (GetMany returned "context deadline exceeded", or "1 keys still
// unread after 30 attempts" with no deadline).
func TestUnreachableNodeIsNamed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	c, err := Dial([]string{dead})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	calls := map[string]func() error{
		"Get":     func() error { _, _, err := c.Get(ctx, []byte("k")); return err },
		"GetMany": func() error { _, err := c.GetMany(ctx, [][]byte{[]byte("k")}, ReadOptions{}); return err },
		"Upsert":  func() error { _, err := c.Upsert(ctx, Entry{Key: []byte("k"), Value: []byte("v")}); return err },
		"Remove":  func() error { _, err := c.Remove(ctx, []byte("k")); return err },
	}
	for name, call := range calls {
		err := call()
		var ce *ConnectError
		if !errors.As(err, &ce) || ce.Addr != dead || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("%s: %v, want a ConnectError naming %s and the refusal", name, err, dead)
		}
		if status.Code(err) != codes.Unavailable {
			t.Errorf("%s: code %v, want Unavailable", name, status.Code(err))
		}
	}
	if ctx.Err() != nil {
		t.Fatal("the calls waited for the deadline")
	}
	if _, err := Dial([]string{"127.0.0.1"}); err == nil || !strings.Contains(err.Error(), "HOST:PORT") {
		t.Fatalf("an address without a port: %v", err)
	}
}
