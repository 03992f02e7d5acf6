package node

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/keyspace"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/registry"
)

const dashboardPath = "../examples/grafana/dashboards/sluice.json"

// Every metric the Grafana dashboard in examples/ queries is exported by a
// running node: one that owns a partition, keeps a standby of another,
// served writes, reads and ingest.
func TestDashboardMetricsAreExported(t *testing.T) {
	want := dashboardMetrics(t)
	cluster := kafkatest.ClusterName(t)
	n1 := startNode(t, Config{Cluster: cluster, Partitions: 2, HTTPAddr: "127.0.0.1:0"})
	n2 := startNode(t, Config{Cluster: cluster, NodeID: "n2"})
	ctx := context.Background()
	// Partition 2 moves to n2 with a standby on n1.
	if err := n1.registry.Update(ctx, func(v *registry.View) ([]registry.Mutation, error) {
		p := v.Partitions[2]
		epoch, bump := v.NextEpoch()
		p.Owner, p.Epoch, p.Standbys = "n2", epoch, []string{"n1"}
		return []registry.Mutation{bump, registry.PutPartition(p)}, nil
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "n2 serves partition 2", func() bool { p, ok := n2.local(2); return ok && p.Serving() })
	eventually(t, "n1 keeps a standby of partition 2", func() bool { _, ok := n1.standby(2); return ok })

	key := keyOf(t, n1, 1)
	if _, err := n1.data.Upsert(ctx, upsert(key, "by-grpc")); err != nil {
		t.Fatal(err)
	}
	if _, err := n1.data.Get(ctx, &sluicev1.GetRequest{Key: []byte(key)}); err != nil {
		t.Fatal(err)
	}
	ingestReadable(t, n1, key)

	var fams map[string]*dto.MetricFamily
	eventually(t, "n1 reports its standby's lag", func() bool {
		fams = scrape(t, n1.HTTPAddr())
		return len(fams["sluice_standby_lag_records"].GetMetric()) > 0
	})
	for _, name := range want {
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suffix); ok && fams[b].GetType() == dto.MetricType_HISTOGRAM {
				base = b
			}
		}
		if len(fams[base].GetMetric()) == 0 {
			t.Errorf("the dashboard queries %s; the node exports no series of it", name)
		}
	}
	if got := gaugeOf(fams, "sluice_partition_state", map[string]string{"partition": "1", "state": "serving"}); got != 1 {
		t.Errorf("sluice_partition_state{partition=1,state=serving} = %v, want 1", got)
	}
}

// ingestReadable produces a record to key's ingest slot and checks that once
// the node counts its slot's applied lag as 0 (with the topic's end past the
// record), a linearizable Get returns it.
func ingestReadable(t *testing.T, n *testNode, key string) {
	t.Helper()
	cl, err := kgo.NewClient(append(n.kafkaOpts(), kgo.DefaultProduceTopic(n.topics.Ingest()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rec := &kgo.Record{Key: []byte(key), Value: []byte("by-ingest")}
	if err := cl.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	slot := keyspace.Slot(rec.Key, n.slots)
	eventually(t, "the record's slot has no applied lag", func() bool {
		for _, s := range n.ingestLag.Slots() {
			if s.Slot == slot && s.End > rec.Offset && s.Applied == 0 {
				return true
			}
		}
		return false
	})
	got, err := n.data.Get(context.Background(), &sluicev1.GetRequest{Key: rec.Key})
	if err != nil || string(got.GetValue()) != "by-ingest" {
		t.Fatalf("applied lag 0, but Get(%s) = %v %v", key, got, err)
	}
}

func scrape(t testing.TB, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

func gaugeOf(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	for _, m := range fams[name].GetMetric() {
		match := 0
		for _, l := range m.GetLabel() {
			if v, ok := labels[l.GetName()]; ok && v == l.GetValue() {
				match++
			}
		}
		if match == len(labels) {
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

// dashboardMetrics returns the metric names the dashboard's PromQL
// expressions (and its variables' label_values queries) read.
func dashboardMetrics(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if s, ok := c.(string); ok && (k == "expr" || k == "definition") {
					exprs = append(exprs, s)
				}
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(dash)
	names := map[string]bool{}
	for _, e := range exprs {
		for _, n := range promqlMetrics(e) {
			names[n] = true
		}
	}
	out := make([]string, 0, len(names))
	for n := range names {
		out = append(out, n)
	}
	slices.Sort(out)
	// The parser must find what the dashboard is for, or the test proves nothing.
	for _, n := range []string{"grpc_server_handled_total", "grpc_server_handling_seconds_bucket", "sluice_partition_state",
		"sluice_ingest_applied_lag_records", "sluice_standby_lag_records", "sluice_restore_lag_records", "sluice_ingest_dlq_total"} {
		if !names[n] {
			t.Fatalf("found no %s in the dashboard's queries (found %v)", n, out)
		}
	}
	return out
}

var (
	promqlStrip = []*regexp.Regexp{
		regexp.MustCompile(`"(?:[^"\\]|\\.)*"`), // label values
		regexp.MustCompile(`\{[^}]*\}`),         // label matchers
		regexp.MustCompile(`\[[^\]]*\]`),        // ranges
		regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`),
	}
	promqlIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promqlKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true, "inf": true, "nan": true}
	labelValues    = regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,`)
)

// promqlMetrics returns the metric names in a PromQL expression: the
// identifiers left once label matchers, ranges and grouping clauses are
// removed, that are not functions (followed by "(") or keywords.
func promqlMetrics(expr string) []string {
	if m := labelValues.FindStringSubmatch(expr); m != nil {
		return []string{m[1]}
	}
	for _, re := range promqlStrip {
		expr = re.ReplaceAllString(expr, " ")
	}
	var out []string
	for _, loc := range promqlIdent.FindAllStringIndex(expr, -1) {
		name := expr[loc[0]:loc[1]]
		rest := strings.TrimLeft(expr[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") || promqlKeywords[strings.ToLower(name)] {
			continue
		}
		if loc[0] > 0 && (expr[loc[0]-1] == '.' || (expr[loc[0]-1] >= '0' && expr[loc[0]-1] <= '9')) {
			continue // the tail of a number (1e3)
		}
		out = append(out, name)
	}
	return out
}
