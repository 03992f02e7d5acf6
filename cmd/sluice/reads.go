package main

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/sluicedb/sluice/client"
)

// The read side's commands: get (one key or many), scan, watch.

// readFlags are the flags of the reading commands.
type readFlags struct {
	clientFlags
	output      string
	consistency string
	raw         bool // -o raw is allowed
}

func (f *readFlags) register(cmd *cobra.Command) {
	f.clientFlags.register(cmd)
	cmd.Flags().StringVarP(&f.output, "output", "o", "text", f.outputs())
	cmd.Flags().StringVar(&f.consistency, "consistency", "linearizable", "linearizable, session or eventual")
}

// outputs names the -o formats: raw only where one value is printed (get).
func (f *readFlags) outputs() string {
	if f.raw {
		return "text, json or raw (the value's bytes alone, no newline: one key)"
	}
	return "text or json"
}

func (f *readFlags) level() (client.Consistency, error) {
	if f.output != "text" && f.output != "json" && (f.output != "raw" || !f.raw) {
		return 0, usageError(fmt.Errorf("--output %q: %s", f.output, f.outputs()))
	}
	v, err := client.ParseConsistency(f.consistency)
	if err != nil {
		return 0, usageError(fmt.Errorf("--consistency %q: linearizable, session or eventual", f.consistency))
	}
	return v, nil
}

// jsonRead is one key as `-o json` prints it: bytes that are UTF-8 as a
// string, others in base64 under *_base64.
type jsonRead struct {
	Key           string `json:"key,omitempty"`
	KeyBase64     string `json:"key_base64,omitempty"`
	Found         *bool  `json:"found,omitempty"`
	Removed       bool   `json:"removed,omitempty"`
	Value         string `json:"value,omitempty"`
	ValueBase64   string `json:"value_base64,omitempty"`
	Version       uint64 `json:"version,omitempty"`
	Timestamp     uint64 `json:"timestamp,omitempty"`
	Slot          *int32 `json:"slot,omitempty"`
	Offset        *int64 `json:"offset,omitempty"`
	NextPageToken string `json:"next_page_token,omitempty"`
}

func textOrBase64(b []byte) (string, string) {
	if utf8.Valid(b) {
		return string(b), ""
	}
	return "", base64.StdEncoding.EncodeToString(b)
}

func newJSONRead(key []byte, v client.Value) jsonRead {
	j := jsonRead{Version: v.Version, Timestamp: v.Timestamp}
	j.Key, j.KeyBase64 = textOrBase64(key)
	j.Value, j.ValueBase64 = textOrBase64(v.Data)
	return j
}

func getCmd() *cobra.Command {
	f := readFlags{raw: true}
	cmd := &cobra.Command{
		Use:   "get KEY [KEY...]",
		Short: "Read keys (exits 3 if one does not exist, unless -o json)",
		Long: "Read one key, or many in one GetMany per node (up to 1,000 keys a call; more are split).\n" +
			"Text output: the value of one key; KEY<TAB>VALUE lines for several. -o json: an array of\n" +
			"{key, found, value, version, timestamp} in the order asked (value_base64 for bytes that are not UTF-8).\n" +
			"-o raw: the one key's value, byte for byte, without a newline (sluice get k -o raw > file).",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			level, err := f.level()
			if err != nil {
				return err
			}
			if f.output == "raw" && len(args) != 1 {
				return usageError(fmt.Errorf("-o raw prints one value: give one KEY"))
			}
			keys := make([][]byte, len(args))
			for i, a := range args {
				keys[i] = []byte(a)
			}
			return f.run(func(ctx context.Context, c *client.Client) error {
				reads, err := c.GetMany(ctx, keys, client.ReadOptions{Consistency: level})
				if err != nil {
					return err
				}
				return printReads(cmd.OutOrStdout(), f.output, keys, reads)
			})
		},
	}
	f.register(cmd)
	return cmd
}

func printReads(w io.Writer, output string, keys [][]byte, reads []client.Read) error {
	if output == "json" {
		out := make([]jsonRead, len(keys))
		for i, r := range reads {
			out[i] = newJSONRead(keys[i], r.Value)
			out[i].Found = &r.Found
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	var missing []string
	for i, r := range reads {
		switch {
		case !r.Found:
			missing = append(missing, fmt.Sprintf("%q", keys[i]))
		case output == "raw":
			if _, err := w.Write(r.Data); err != nil {
				return err
			}
		case len(keys) == 1:
			if _, err := w.Write(append(r.Data, '\n')); err != nil {
				return err
			}
		default:
			fmt.Fprintf(w, "%s\t%s\n", keys[i], r.Data)
		}
	}
	switch {
	case len(missing) == 1:
		return notFound(fmt.Errorf("key %s not found", missing[0]))
	case len(missing) > 1:
		return notFound(fmt.Errorf("%d of %d keys not found: %s", len(missing), len(keys), strings.Join(missing, ", ")))
	}
	return nil
}

func scanCmd() *cobra.Command {
	f := readFlags{clientFlags: clientFlags{timeout: 0}}
	var (
		start, end, token string
		limit             int
	)
	cmd := &cobra.Command{
		Use:   "scan [PREFIX]",
		Short: "List the keys of a prefix or a range, in key order",
		Long: "List the keys under PREFIX, or of [--start, --end), in key order: KEY<TAB>VALUE lines, or one\n" +
			"JSON object a line with -o json. Keys are hashed over slots, so a scan reads every partition.\n" +
			"When --limit stops it and keys remain, the token of the next page is printed to stderr\n" +
			"(and, with -o json, as a last {\"next_page_token\": ...} line): pass it as --page-token.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			level, err := f.level()
			if err != nil {
				return err
			}
			o := client.ScanOptions{Start: []byte(start), End: []byte(end), Limit: limit, Consistency: level}
			if len(args) == 1 {
				o.Prefix = []byte(args[0])
			}
			if token != "" {
				if o.PageToken, err = base64.RawURLEncoding.DecodeString(token); err != nil {
					return fmt.Errorf("--page-token: not a token from sluice scan: %w", err)
				}
			}
			return f.run(func(ctx context.Context, c *client.Client) error {
				w := cmd.OutOrStdout()
				enc := json.NewEncoder(w)
				var werr error
				next, err := c.ScanFunc(ctx, o, func(kv client.KeyValue) bool {
					if f.output == "json" {
						werr = enc.Encode(newJSONRead(kv.Key, kv.Value))
					} else {
						_, werr = fmt.Fprintf(w, "%s\t%s\n", kv.Key, kv.Data)
					}
					return werr == nil
				})
				if err != nil || werr != nil || next == nil {
					return cmp.Or(err, werr)
				}
				tok := base64.RawURLEncoding.EncodeToString(next)
				fmt.Fprintf(cmd.ErrOrStderr(), "more keys: --page-token %s\n", tok)
				if f.output == "json" {
					return enc.Encode(jsonRead{NextPageToken: tok})
				}
				return nil
			})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&start, "start", "", "first key of a range (instead of PREFIX)")
	cmd.Flags().StringVar(&end, "end", "", "end of a range, excluded (empty: no end)")
	cmd.Flags().IntVar(&limit, "limit", 1000, "at most this many keys (0: all)")
	cmd.Flags().StringVar(&token, "page-token", "", "resume after the last key of a previous page")
	return cmd
}

func watchCmd() *cobra.Command {
	// Untimed: a watch runs until interrupted (a default deadline ended it
	// after 10s without a word, and the changes after went unprinted).
	f := readFlags{clientFlags: clientFlags{untimed: true}}
	var from string
	cmd := &cobra.Command{
		Use:   "watch [PREFIX]",
		Short: "Print committed changes to keys under PREFIX as they happen",
		Long: "Print committed changes to keys under PREFIX (every key without one), in changelog order per\n" +
			"slot, until interrupted: \"put KEY VALUE (version N)\" and \"rm KEY (version N)\" lines, or with\n" +
			"-o json one object a change and, after each batch, {\"session\": TOKEN}. --from TOKEN resumes\n" +
			"from such a token (or a write's session) without gaps or repeats. If the node serving the\n" +
			"watch goes away, the watch resumes on another node.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := f.level(); err != nil {
				return err
			}
			var prefix []byte
			if len(args) == 1 {
				prefix = []byte(args[0])
			}
			var o client.WatchOptions
			if from != "" {
				o.From = &client.Session{}
				// A {"session": TOKEN} line, as watch -o json prints it, or
				// the token itself.
				var line struct {
					Session json.RawMessage `json:"session"`
				}
				tok := []byte(from)
				if json.Unmarshal(tok, &line) == nil && len(line.Session) > 0 {
					tok = line.Session
				}
				if err := o.From.UnmarshalJSON(tok); err != nil {
					return usageError(fmt.Errorf("--from: %w", err))
				}
			}
			o.OnResume = func(addr string, err error) {
				fmt.Fprintf(cmd.ErrOrStderr(), "sluice: watch interrupted (%v); resuming through %s\n", err, addr)
			}
			return f.run(func(ctx context.Context, c *client.Client) error {
				ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
				defer stop()
				w := cmd.OutOrStdout()
				enc := json.NewEncoder(w)
				err := c.Watch(ctx, prefix, o, func(b client.WatchBatch) error {
					for _, ch := range b.Changes {
						if f.output == "json" {
							j := newJSONRead(ch.Key, client.Value{Data: ch.Value, Version: ch.Version, Timestamp: ch.Timestamp})
							j.Removed, j.Slot, j.Offset = ch.Removed, &ch.Slot, &ch.Offset
							if err := enc.Encode(j); err != nil {
								return err
							}
						} else if ch.Removed {
							fmt.Fprintf(w, "rm %s (version %d)\n", ch.Key, ch.Version)
						} else {
							fmt.Fprintf(w, "put %s %s (version %d)\n", ch.Key, ch.Value, ch.Version)
						}
					}
					if f.output == "json" && len(b.Changes) > 0 {
						tok, err := json.Marshal(b.Session)
						if err != nil {
							return err
						}
						_, err = fmt.Fprintf(w, "{\"session\":%s}\n", tok)
						return err
					}
					return nil
				})
				// The server ends the stream at the deadline it was sent
				// (RST_STREAM CANCEL), which can reach here a moment before
				// this process's own timer fires: that is the timeout too.
				if d, ok := ctx.Deadline(); ok && err != nil && time.Until(d) < time.Second {
					<-ctx.Done()
				}
				switch {
				case errors.Is(ctx.Err(), context.DeadlineExceeded):
					fmt.Fprintf(cmd.ErrOrStderr(), "sluice: watch ended: --timeout %s reached\n", f.timeout)
					return nil
				case ctx.Err() != nil:
					return nil // interrupted
				}
				return err
			})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&from, "from", "", "session token (JSON) to resume from; default: changes from now")
	return cmd
}
