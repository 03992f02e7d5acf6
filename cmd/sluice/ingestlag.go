package main

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"
)

func ingestLagCmd() *cobra.Command {
	var httpAddr string
	cmd := &cobra.Command{
		Use:   "ingest-lag",
		Short: "Show how far each slot of the ingest topic is from applied (readable) state, and from fetched",
		Long: `Per slot the node owns, the records between the ingest topic's committed end and:
  APPLIED  what the partition has committed to the changelog and applied to its store.
           0 means every record produced so far is readable: wait for this one.
  FETCHED  what the node's consumer has read. It reaches 0 while records are still
           being applied; "-" while no consumer runs (the partition is restoring).
The topic's end is listed every second, so records produced in the last second
may not be counted yet.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hc := http.Client{Timeout: 10 * time.Second}
			resp, err := hc.Get("http://" + httpAddr + "/metrics")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if err := printIngestLag(cmd.OutOrStdout(), resp.Body); err != nil {
				return fmt.Errorf("reading %s/metrics: %w", httpAddr, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&httpAddr, "http-addr", envOr("SLUICE_HTTP_ADDR", "127.0.0.1:7402"), "a node's HTTP (metrics) address ($SLUICE_HTTP_ADDR)")
	return cmd
}

// printIngestLag writes the ingest lags of a node's /metrics as a table.
func printIngestLag(w io.Writer, metrics io.Reader) error {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(metrics)
	if err != nil {
		return err
	}
	bySlot := func(name string) map[int]float64 {
		out := map[int]float64{}
		for _, m := range families[name].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "slot" {
					slot, _ := strconv.Atoi(l.GetValue())
					out[slot] = m.GetGauge().GetValue()
				}
			}
		}
		return out
	}
	applied, fetched := bySlot("sluice_ingest_applied_lag_records"), bySlot("sluice_ingest_lag_records")
	if len(applied) == 0 {
		fmt.Fprintln(w, "no ingest slots reported yet (the node lists the topic's end every second; a restoring partition's slots come once it has restored)")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SLOT\tAPPLIED\tFETCHED")
	var totalA, totalF float64
	for _, s := range slices.Sorted(maps.Keys(applied)) {
		f, ok := fetched[s]
		fs := "-"
		if ok {
			fs = strconv.FormatFloat(f, 'f', 0, 64)
			totalF += f
		}
		totalA += applied[s]
		fmt.Fprintf(tw, "%d\t%.0f\t%s\n", s, applied[s], fs)
	}
	fmt.Fprintf(tw, "total\t%.0f\t%.0f\n", totalA, totalF)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "records behind the ingest topic's end; APPLIED 0 = all readable, FETCHED = only read by the consumer")
	return nil
}
