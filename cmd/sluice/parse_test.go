package main

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"

	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// countingControl is a control plane that counts the calls that reach it.
type countingControl struct {
	sluicev1.UnimplementedControlServer
	calls atomic.Int32
}

func (c *countingControl) AddPartition(context.Context, *sluicev1.AddPartitionRequest) (*sluicev1.PartitionInfo, error) {
	c.calls.Add(1)
	return &sluicev1.PartitionInfo{Range: &sluicev1.SlotRange{}}, nil
}

func (c *countingControl) RemovePartition(context.Context, *sluicev1.RemovePartitionRequest) (*sluicev1.PartitionInfo, error) {
	c.calls.Add(1)
	return &sluicev1.PartitionInfo{Range: &sluicev1.SlotRange{}}, nil
}

func (c *countingControl) MovePartition(context.Context, *sluicev1.MovePartitionRequest) (*sluicev1.PartitionInfo, error) {
	c.calls.Add(1)
	return &sluicev1.PartitionInfo{Range: &sluicev1.SlotRange{}}, nil
}

func (c *countingControl) Snapshot(context.Context, *sluicev1.SnapshotRequest) (*sluicev1.Operation, error) {
	c.calls.Add(1)
	return &sluicev1.Operation{}, nil
}

// An id or a slot range with anything after it (the tester's D2: "rm 4-8x"
// removed [4,8), "rm 7.5" removed partition 7, "add 14-16zz" added [14,16))
// is a usage error naming the argument, and nothing reaches the control
// plane. Well-formed arguments still do.
func TestPartitionArgumentsAreParsedWhole(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	ctl := &countingControl{}
	sluicev1.RegisterControlServer(srv, ctl)
	go srv.Serve(ln)
	defer srv.Stop()
	t.Setenv("SLUICE_TOKEN", "test-token")
	run := func(args ...string) error {
		cmd := partitionsCmd()
		if args[0] == "snapshot" {
			cmd = snapshotCmd()
			args = args[1:]
		}
		cmd.SetArgs(append([]string{"--control-addr", ln.Addr().String()}, args...))
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		return cmd.Execute()
	}
	for _, args := range [][]string{
		{"rm", "4-8x"}, {"rm", "7.5"}, {"rm", "7x"}, {"rm", "4-"}, {"rm", "4-8-12"}, {"rm", " 4"},
		{"add", "14-16zz", "--node", "n2"}, {"add", "14-16 "}, {"add", "0x1-4"}, {"add", "1-99999999999"},
		{"move", "3x", "--to", "n2"}, {"move", "+3", "--to", "n2"},
		{"snapshot", "1.0", "snap"},
	} {
		bad := args[1]
		err := run(args...)
		if err == nil || !strings.Contains(err.Error(), `"`+bad+`"`) {
			t.Errorf("sluice partitions %s: %v, want a usage error naming %q", strings.Join(args, " "), err, bad)
		}
		if n := ctl.calls.Swap(0); n != 0 {
			t.Errorf("sluice partitions %s: %d calls reached the control plane, want none", strings.Join(args, " "), n)
		}
	}
	for _, args := range [][]string{{"rm", "4-8"}, {"rm", "7"}, {"add", "14-16", "--node", "n2"}, {"move", "3", "--to", "n2"}, {"snapshot", "1", "snap"}} {
		if err := run(args...); err != nil {
			t.Errorf("sluice partitions %s: %v", strings.Join(args, " "), err)
		}
		if n := ctl.calls.Swap(0); n != 1 {
			t.Errorf("sluice partitions %s: %d calls reached the control plane, want 1", strings.Join(args, " "), n)
		}
	}
}
