package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sluicedb/sluice/bench"
)

func benchCmd() *cobra.Command {
	var (
		cfg              bench.Config
		addrs, brokers   string
		jsonOut, plotOut string
		cpuProfile       string
		kafka            kafkaSecurity
		data             clientFlags
	)
	var names []string
	for n, what := range bench.Workloads {
		names = append(names, fmt.Sprintf("  %-13s %s", n, what))
	}
	sort.Strings(names)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load a cluster and report throughput and latency percentiles",
		Long:  "Workloads:\n" + strings.Join(names, "\n"),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			cfg.Addrs = strings.Split(addrs, ",")
			if brokers != "" {
				cfg.Brokers = strings.Split(brokers, ",")
			}
			sec, err := kafka.build()
			if err != nil {
				return err
			}
			cfg.Kafka = sec.Opts()
			if cfg.Client, err = data.options(); err != nil {
				return err
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			if cfg.Workload == "watch" {
				r, err := bench.WatchLatency(ctx, cfg, os.Stderr)
				if err != nil {
					return err
				}
				r.Print(cmd.OutOrStdout())
				if r.Missing+r.OutOfOrder+r.WrongVersion > 0 {
					return fmt.Errorf("the watch broke its promise: %d acknowledged writes missing, %d events out of order, %d with another version", r.Missing, r.OutOfOrder, r.WrongVersion)
				}
				return nil
			}
			r, err := bench.Run(ctx, cfg, os.Stderr)
			if err != nil {
				return err
			}
			r.Print(cmd.OutOrStdout())
			defer func() {
				if err == nil && r.ErrorsDominate() {
					err = fmt.Errorf("bench: %d of %d calls failed (a run fails when at least half of its calls do); the most frequent: %s",
						r.Errors, r.Errors+r.Ops, r.Causes[0].Error)
				}
			}()
			if jsonOut != "" {
				b, err := json.MarshalIndent(r, "", "  ")
				if err != nil {
					return err
				}
				if err := os.WriteFile(jsonOut, b, 0o644); err != nil {
					return err
				}
			}
			if plotOut != "" {
				f, err := os.Create(plotOut)
				if err != nil {
					return err
				}
				defer f.Close()
				return r.WriteSVG(f)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&addrs, "addr", envOr("SLUICE_ADDR", "127.0.0.1:7400"), "data-plane address(es) of nodes, comma-separated ($SLUICE_ADDR)")
	f.StringVarP(&cfg.Workload, "workload", "w", "upsert-batch", "what to run (see above)")
	f.IntVar(&cfg.ValueSize, "value-size", 100, "bytes per value")
	f.IntVar(&cfg.Keys, "keys", 100_000, "key space")
	f.StringVar(&cfg.KeyPrefix, "key-prefix", "bench-", "prefix of every key the workloads write and read (then eight digits)")
	f.StringVar(&cfg.Dist, "dist", "uniform", "key distribution: uniform, zipfian, or sequential (keys 0, 1, 2, … once each across all clients, wrapping: --dist sequential --keys N --ops N/--batch fills N distinct keys)")
	f.IntVar(&cfg.Batch, "batch", 100, "keys per upsert-batch, get-many or scan")
	f.IntVarP(&cfg.Concurrency, "concurrency", "c", 32, "concurrent clients")
	f.DurationVarP(&cfg.Duration, "duration", "d", 0, "how long to run (default 10s unless --ops)")
	f.Int64Var(&cfg.Ops, "ops", 0, "stop after this many operations (shows a progress bar)")
	f.Float64Var(&cfg.Rate, "rate", 0, "pace all clients together to this many ops/s; latency counts from when each op was due (0: as fast as they go)")
	f.StringVar(&brokers, "brokers", "", "Kafka brokers (ingest workload)")
	kafka.register(f)
	f.StringVar(&data.tokenFile, "data-token-file", "", "file holding the data plane's bearer token ($SLUICE_DATA_TOKEN also works)")
	data.tls.register(f)
	f.StringVar(&cfg.Cluster, "cluster", "sluice", "cluster name (ingest workload)")
	f.StringVar(&jsonOut, "json", "", "write the result as JSON to this file")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write the load generator's own CPU profile to this file")
	f.StringVar(&plotOut, "plot", "", "write an SVG plot of ops/s and p99 per second to this file")
	return cmd
}
