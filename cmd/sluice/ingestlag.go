package main

import (
	"fmt"
	"net/http"
	"sort"
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
		Short: "Show how far each slot's ingest consumer is behind the ingest topic",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hc := http.Client{Timeout: 10 * time.Second}
			resp, err := hc.Get("http://" + httpAddr + "/metrics")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			p := expfmt.NewTextParser(model.UTF8Validation)
			families, err := p.TextToMetricFamilies(resp.Body)
			if err != nil {
				return fmt.Errorf("reading %s/metrics: %w", httpAddr, err)
			}
			lag := map[int]float64{}
			if f := families["sluice_ingest_lag_records"]; f != nil {
				for _, m := range f.Metric {
					for _, l := range m.Label {
						if l.GetName() == "slot" {
							slot, _ := strconv.Atoi(l.GetValue())
							lag[slot] = m.GetGauge().GetValue()
						}
					}
				}
			}
			if len(lag) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no ingest consumed yet")
				return nil
			}
			slots := make([]int, 0, len(lag))
			for s := range lag {
				slots = append(slots, s)
			}
			sort.Ints(slots)
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SLOT\tLAG (records)")
			for _, s := range slots {
				fmt.Fprintf(tw, "%d\t%.0f\n", s, lag[s])
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&httpAddr, "http-addr", "127.0.0.1:7402", "a node's HTTP (metrics) address")
	return cmd
}
