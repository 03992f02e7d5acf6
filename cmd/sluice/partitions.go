package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/server"
)

// controlFlags are the flags of every control-plane command.
type controlFlags struct {
	addr      string
	tokenFile string
	output    string
	timeout   time.Duration
	tls       tlsFlags
}

func (f *controlFlags) register(cmd *cobra.Command) {
	fs := cmd.PersistentFlags()
	fs.StringVar(&f.addr, "control-addr", envOr("SLUICE_CONTROL_ADDR", "127.0.0.1:7401"), "control-plane address of a node ($SLUICE_CONTROL_ADDR)")
	fs.StringVar(&f.tokenFile, "control-token-file", "", "file holding the control plane's bearer token (default: $SLUICE_CONTROL_TOKEN, else $SLUICE_DATA_DIR/control.token, else data/control.token)")
	// The old spelling, kept working.
	fs.StringVar(&f.tokenFile, "token-file", "", "")
	_ = fs.MarkDeprecated("token-file", "use --control-token-file")
	fs.StringVarP(&f.output, "output", "o", "text", "text or json")
	cmd.PersistentFlags().DurationVar(&f.timeout, "timeout", 60*time.Second, "deadline of the call (control calls are slow by design)")
	f.tls.register(cmd.PersistentFlags())
}

func (f *controlFlags) run(fn func(ctx context.Context, c sluicev1.ControlClient) (proto.Message, error)) error {
	switch f.output {
	case "text", "json":
	case "table": // the old name of text
		f.output = "text"
	default:
		return usageError(fmt.Errorf("--output %q: text or json", f.output))
	}
	token, err := f.token()
	if err != nil {
		return err
	}
	creds, err := f.tls.creds()
	if err != nil {
		return err
	}
	cc, err := grpc.NewClient(server.Target(f.addr), grpc.WithTransportCredentials(creds), grpc.WithPerRPCCredentials(server.BearerToken(token)))
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	cl := sluicev1.NewControlClient(cc)
	msg, err := callControl(ctx, f.addr, func(ctx context.Context) (proto.Message, error) { return fn(ctx, cl) })
	if err != nil {
		return err
	}
	if f.output == "json" {
		b, err := protojson.MarshalOptions{Multiline: true, EmitUnpopulated: true}.Marshal(msg)
		if err != nil {
			return err
		}
		fmt.Println(string(b))
		return nil
	}
	printTable(msg)
	return nil
}

func printTable(msg proto.Message) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	var parts []*sluicev1.PartitionInfo
	switch m := msg.(type) {
	case *sluicev1.Operation:
		fmt.Fprintf(tw, "OPERATION\tSTATE\tERROR\n%s\t%s\t%s\n", m.Id, m.State, m.Error)
		if m.Result != "" {
			fmt.Fprintf(tw, "\n%s\n", m.Result)
		}
		return
	case *sluicev1.AutoPlacement:
		fmt.Fprintln(tw, autoPlacement(m.On))
		return
	case *sluicev1.ListPartitionsResponse:
		parts = m.Partitions
	case *sluicev1.PartitionInfo:
		parts = []*sluicev1.PartitionInfo{m}
	}
	fmt.Fprintln(tw, "ID\tSLOTS\tOWNER\tEPOCH\tSTATE\tKEYS\tLAG\tSTANDBYS\tMODE\tPLACED")
	_, written := msg.(*sluicev1.PartitionInfo) // the registry's entry a change wrote: no owner was asked for its state
	for _, p := range parts {
		state, keys, lag, mode := p.State, fmt.Sprint(p.Keys), fmt.Sprint(p.ChangelogLag), p.Mode
		if written {
			state, keys, lag, mode = "-", "-", "-", "-"
		}
		fmt.Fprintf(tw, "%d\t[%d,%d)\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Id, p.Range.GetFrom(), p.Range.GetTo(), p.Owner, p.Epoch, state, keys, lag, strings.Join(p.Standbys, ","), mode, placed(p))
	}
	if m, ok := msg.(*sluicev1.ListPartitionsResponse); ok {
		tw.Flush()
		fmt.Println()
		for _, n := range m.Nodes {
			fmt.Printf("node %s: data %s, control %s\n", n.Id, n.DataAddr, n.ControlAddr)
		}
		fmt.Println(autoPlacement(m.AutoPlacement))
	}
}

func autoPlacement(on bool) string {
	if on {
		return "automatic placement: on (failover and rebalancing, on nodes run with --failover auto)"
	}
	return "automatic placement: paused (sluice cluster auto on resumes it)"
}

// placed is a partition's PLACED column: why its owner owns it, whether it
// is pinned, and a rebalance under way.
func placed(p *sluicev1.PartitionInfo) string {
	var out []string
	if p.Placed != "" {
		out = append(out, p.Placed)
	}
	if p.Pinned {
		out = append(out, "pinned")
	}
	if p.MovingTo != "" {
		out = append(out, "moving to "+p.MovingTo)
	}
	if len(out) == 0 {
		return "-"
	}
	return strings.Join(out, "; ")
}

// token is the control token: --control-token-file, else
// $SLUICE_CONTROL_TOKEN (or its old name $SLUICE_TOKEN), else the file a
// node makes in its data directory ($SLUICE_DATA_DIR, else ./data). A flag
// wins over the environment, as everywhere.
func (f *controlFlags) token() (string, error) {
	file := f.tokenFile
	if file == "" {
		for _, env := range []string{"SLUICE_CONTROL_TOKEN", "SLUICE_TOKEN"} {
			if tok := strings.TrimSpace(os.Getenv(env)); tok != "" {
				return tok, nil
			}
		}
		file = filepath.Join(envOr("SLUICE_DATA_DIR", "data"), "control.token")
	}
	tok, err := readSecret(file)
	if err != nil {
		return "", &exitError{exitDenied, fmt.Errorf("control token: %w (give --control-token-file, or $SLUICE_CONTROL_TOKEN)", err)}
	}
	return tok, nil
}

// envOr is the environment variable name, or def when it is unset or empty.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func partitionsCmd() *cobra.Command {
	var f controlFlags
	cmd := &cobra.Command{Use: "partitions", Short: "Manage partitions through the control plane (ls, add, rm, move)"}
	f.register(cmd)

	ls := &cobra.Command{Use: "ls", Short: "List partitions", Args: cobra.NoArgs, RunE: func(*cobra.Command, []string) error {
		return f.run(func(ctx context.Context, c sluicev1.ControlClient) (proto.Message, error) {
			return c.ListPartitions(ctx, &sluicev1.ListPartitionsRequest{})
		})
	}}

	var addID, addStandbys uint32
	var addNode string
	add := &cobra.Command{Use: "add FROM-TO", Short: "Add a partition over a slot range", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
		r, err := parseRange(args[0])
		if err != nil {
			return err
		}
		req := &sluicev1.AddPartitionRequest{Range: r, Node: addNode, Standbys: addStandbys}
		if cmd.Flags().Changed("id") {
			req.Id = &addID
		}
		return f.run(func(ctx context.Context, c sluicev1.ControlClient) (proto.Message, error) {
			return c.AddPartition(ctx, req)
		})
	}}
	add.Flags().Uint32Var(&addID, "id", 0, "partition id (default: the next from the registry's counter; an id given before is never given again)")
	add.Flags().StringVar(&addNode, "node", "", "owner node (default: the least loaded)")
	add.Flags().Uint32Var(&addStandbys, "standbys", 0, "other nodes keeping a standby (serving SESSION and EVENTUAL reads; fast handover)")

	rm := &cobra.Command{Use: "rm ID|FROM-TO", Short: "Remove a partition by id or by its exact range", Args: cobra.ExactArgs(1), RunE: func(_ *cobra.Command, args []string) error {
		req := &sluicev1.RemovePartitionRequest{}
		if strings.Contains(args[0], "-") {
			r, err := parseRange(args[0])
			if err != nil {
				return err
			}
			req.Range = r
		} else {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			req.Id = &id
		}
		return f.run(func(ctx context.Context, c sluicev1.ControlClient) (proto.Message, error) {
			return c.RemovePartition(ctx, req)
		})
	}}

	var to string
	move := &cobra.Command{Use: "move ID --to NODE", Short: "Move a partition to another node (a new epoch; the new owner fences the old)", Args: cobra.ExactArgs(1), RunE: func(_ *cobra.Command, args []string) error {
		id, err := parseID(args[0])
		if err != nil {
			return err
		}
		return f.run(func(ctx context.Context, c sluicev1.ControlClient) (proto.Message, error) {
			return c.MovePartition(ctx, &sluicev1.MovePartitionRequest{Id: id, Node: to})
		})
	}}
	move.Flags().StringVar(&to, "to", "", "the node to move it to")
	_ = move.MarkFlagRequired("to")

	pin := func(use, short string, pinned bool) *cobra.Command {
		return &cobra.Command{Use: use + " ID", Short: short, Args: cobra.ExactArgs(1), RunE: func(_ *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			return f.run(func(ctx context.Context, c sluicev1.ControlClient) (proto.Message, error) {
				return c.PinPartition(ctx, &sluicev1.PinPartitionRequest{Id: id, Pinned: pinned})
			})
		}}
	}

	cmd.AddCommand(ls, add, rm, move,
		pin("pin", "Pin a partition to its owner: automatic placement (failover, rebalancing) never moves it", true),
		pin("unpin", "Let automatic placement move a partition again", false))
	return cmd
}

// clusterCmd holds cluster-wide settings: sluice cluster auto on|off.
func clusterCmd() *cobra.Command {
	var f controlFlags
	cmd := &cobra.Command{Use: "cluster", Short: "Cluster-wide settings through the control plane (auto)"}
	f.register(cmd)
	auto := &cobra.Command{Use: "auto on|off", Short: "Resume or pause automatic placement (failover and rebalancing) for the whole cluster",
		Args: cobra.ExactArgs(1), RunE: func(_ *cobra.Command, args []string) error {
			var on bool
			switch args[0] {
			case "on":
				on = true
			case "off":
			default:
				return usageError(fmt.Errorf("cluster auto: %q is neither on nor off", args[0]))
			}
			return f.run(func(ctx context.Context, c sluicev1.ControlClient) (proto.Message, error) {
				return c.SetAutoPlacement(ctx, &sluicev1.SetAutoPlacementRequest{On: on})
			})
		}}
	cmd.AddCommand(auto)
	return cmd
}

func snapshotCmd() *cobra.Command {
	var f controlFlags
	cmd := &cobra.Command{
		Use:   "snapshot PARTITION PATH",
		Short: "Start a snapshot of a partition into PATH (relative to its owner's --snapshot-root) on its owner's disk; prints the operation",
		Args:  cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			return f.run(func(ctx context.Context, c sluicev1.ControlClient) (proto.Message, error) {
				return c.Snapshot(ctx, &sluicev1.SnapshotRequest{Partition: id, Path: args[1]})
			})
		},
	}
	f.register(cmd)
	return cmd
}

func operationCmd() *cobra.Command {
	var f controlFlags
	cmd := &cobra.Command{
		Use:   "operation ID",
		Short: "Report an operation: running, done or failed with the reason",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return f.run(func(ctx context.Context, c sluicev1.ControlClient) (proto.Message, error) {
				return c.GetOperation(ctx, &sluicev1.GetOperationRequest{Id: args[0]})
			})
		},
	}
	f.register(cmd)
	return cmd
}
