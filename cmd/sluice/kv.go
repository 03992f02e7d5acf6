package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
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
	cmd.Flags().StringVar(&f.addr, "addr", envOr("SLUICE_ADDR", "127.0.0.1:7400"), "data-plane address of a node, or of several, comma-separated: any that answers gives the routes ($SLUICE_ADDR)")
	def := f.timeout // a command may set its own default first
	if def == 0 && !f.untimed {
		def = 10 * time.Second
	}
	cmd.Flags().DurationVar(&f.timeout, "timeout", def, "how long to try (0: no limit)")
	cmd.Flags().StringVar(&f.tokenFile, "data-token-file", os.Getenv("SLUICE_DATA_TOKEN_FILE"), "file holding the data plane's bearer token ($SLUICE_DATA_TOKEN_FILE; or the token itself in $SLUICE_DATA_TOKEN)")
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
			return nil, &exitError{exitDenied, fmt.Errorf("data token: %w", err)}
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
	var addrs []string
	for _, a := range strings.Split(f.addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	c, err := client.Dial(addrs, opts...)
	if err != nil {
		return usageError(fmt.Errorf("--addr: %w", err)) // an address that is not one
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
	var (
		f         clientFlags
		valueFile string
		ttl       time.Duration
		ifVersion uint64
		ifAbsent  bool
	)
	cmd := &cobra.Command{
		Use:   "put KEY [VALUE | -] [KEY VALUE]...",
		Short: "Write a key (its value from the argument, stdin with -, or --value-file)",
		Long: "Write a key. The value is the second argument; \"-\" reads it from stdin and --value-file\n" +
			"from a file, byte for byte (no trailing newline is removed): for values too long for a command\n" +
			"line, or binary ones. Prints the write's version, slot and changelog offset.\n\n" +
			"Several KEY VALUE pairs are one request, split by partition: the keys of one partition are\n" +
			"written atomically (all or none), each partition's part on its own. Then each key's line is\n" +
			"KEY<TAB>version N (slot S, offset O).",
		Example: "  sluice put greeting hello\n  sluice put page - < page.html\n  sluice put blob --value-file photo.jpg\n" +
			"  sluice put session:1 token --ttl 30m\n  sluice put lock holder-1 --if-absent",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 2 && (len(args)%2 != 0 || valueFile != "") {
				return usageError(fmt.Errorf("several keys: give KEY VALUE pairs (%d arguments), without --value-file", len(args)))
			}
			value, err := putValue(cmd, args[:min(len(args), 2)], valueFile)
			if err != nil {
				return err
			}
			e := client.Entry{Key: []byte(args[0]), Value: value, TTL: ttl}
			switch {
			case ifAbsent && cmd.Flags().Changed("if-version"):
				return usageError(fmt.Errorf("--if-absent and --if-version: give one"))
			case ifAbsent:
				e.ExpectedVersion = new(uint64)
			case cmd.Flags().Changed("if-version"):
				e.ExpectedVersion = &ifVersion
			}
			entries := []client.Entry{e}
			for i := 2; i+1 < len(args); i += 2 {
				more := e
				more.Key, more.Value = []byte(args[i]), []byte(args[i+1])
				entries = append(entries, more)
			}
			return f.run(func(ctx context.Context, c *client.Client) error {
				res, err := c.Upsert(ctx, entries...)
				if err != nil {
					return err
				}
				if len(res) > 1 {
					for i, r := range res {
						fmt.Fprintf(cmd.OutOrStdout(), "%s\tversion %d (slot %d, offset %d)\n", entries[i].Key, r.Version, r.Slot, r.Offset)
					}
					return nil
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
	cmd.Flags().StringVar(&valueFile, "value-file", "", "read the value from this file (instead of VALUE)")
	cmd.Flags().Var(ttlFlag{&ttl}, "ttl", "the value expires this long after the write: seconds (60) or a duration in whole seconds (30m); 0: never")
	cmd.Flags().Uint64Var(&ifVersion, "if-version", 0, "write only if the key's version is this one (compare-and-set; exit 6 if not)")
	cmd.Flags().BoolVar(&ifAbsent, "if-absent", false, "write only if the key does not exist (exit 6 if it does)")
	return cmd
}

// putValue is put's value: VALUE, stdin for "-", or --value-file's bytes.
func putValue(cmd *cobra.Command, args []string, file string) ([]byte, error) {
	switch {
	case file != "" && len(args) == 2:
		return nil, usageError(fmt.Errorf("a VALUE and --value-file: give one"))
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--value-file: %w", err)
		}
		return b, nil
	case len(args) < 2:
		return nil, usageError(fmt.Errorf("no value: give VALUE, - (stdin) or --value-file"))
	case args[1] == "-":
		b, err := io.ReadAll(cmd.InOrStdin())
		if err != nil {
			return nil, fmt.Errorf("reading the value from stdin: %w", err)
		}
		return b, nil
	}
	return []byte(args[1]), nil
}

func incrCmd() *cobra.Command {
	var (
		f   clientFlags
		ttl time.Duration
	)
	cmd := &cobra.Command{
		Use:   "incr KEY [DELTA]",
		Short: "Add DELTA (default 1) to a key holding a decimal integer (missing: 0) and print the new value",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			delta := int64(1)
			if len(args) == 2 {
				var err error
				if delta, err = strconv.ParseInt(args[1], 10, 64); err != nil {
					return usageError(fmt.Errorf("DELTA %q: want a whole number such as 1 (a negative one after --: sluice incr KEY -- -5)", args[1]))
				}
			}
			return f.run(func(ctx context.Context, c *client.Client) error {
				n, err := c.IncrementTTL(ctx, []byte(args[0]), delta, ttl)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), n)
				return nil
			})
		},
	}
	f.register(cmd)
	cmd.Flags().Var(ttlFlag{&ttl}, "ttl", "the value expires this long after the write: seconds (60) or a duration in whole seconds (30m); 0: it keeps the expiry it has")
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
