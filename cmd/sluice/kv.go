package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluicedb/sluice/client"
)

// clientFlags are the flags every client command takes.
type clientFlags struct {
	addr    string
	timeout time.Duration
	// untimed: --timeout defaults to 0 (no limit), for a command that
	// runs until interrupted.
	untimed   bool
	tls       tlsFlags
	tokenFile string
}

func (f *clientFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.addr, "addr", "127.0.0.1:7400", "data-plane address of a node")
	def := f.timeout // a command may set its own default first
	if def == 0 && !f.untimed {
		def = 10 * time.Second
	}
	cmd.Flags().DurationVar(&f.timeout, "timeout", def, "how long to try (0: no limit)")
	cmd.Flags().StringVar(&f.tokenFile, "data-token-file", "", "file holding the data plane's bearer token ($SLUICE_DATA_TOKEN also works)")
	f.tls.register(cmd.Flags())
}

// options are the client options the flags (and $SLUICE_DATA_TOKEN) ask for.
func (f *clientFlags) options() ([]client.Option, error) {
	var opts []client.Option
	tc, err := f.tls.config()
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts = append(opts, client.WithTLS(tc))
	}
	token := os.Getenv("SLUICE_DATA_TOKEN")
	if f.tokenFile != "" {
		if token, err = readSecret(f.tokenFile); err != nil {
			return nil, fmt.Errorf("data token: %w", err)
		}
	}
	if token != "" {
		opts = append(opts, client.WithToken(token))
	}
	return opts, nil
}

func (f *clientFlags) run(fn func(ctx context.Context, c *client.Client) error) error {
	opts, err := f.options()
	if err != nil {
		return err
	}
	c, err := client.Dial([]string{f.addr}, opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	if f.timeout > 0 {
		ctx, cancel = context.WithTimeout(context.Background(), f.timeout)
	}
	defer cancel()
	return fn(ctx, c)
}

func putCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "put KEY VALUE",
		Short: "Write a key",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.run(func(ctx context.Context, c *client.Client) error {
				res, err := c.Upsert(ctx, client.Entry{Key: []byte(args[0]), Value: []byte(args[1])})
				if err != nil {
					return err
				}
				if res[0].Offset < 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "dropped by the write pipeline")
					return nil
				}
				fmt.Fprintf(cmd.OutOrStdout(), "version %d (slot %d, offset %d)\n", res[0].Version, res[0].Slot, res[0].Offset)
				return nil
			})
		},
	}
	f.register(cmd)
	return cmd
}

func rmCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "rm KEY",
		Short: "Remove a key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.run(func(ctx context.Context, c *client.Client) error {
				existed, err := c.Remove(ctx, []byte(args[0]))
				if err != nil {
					return err
				}
				if !existed {
					fmt.Fprintf(cmd.OutOrStdout(), "key %q did not exist\n", args[0])
				}
				return nil
			})
		},
	}
	f.register(cmd)
	return cmd
}
