package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestPrintIngestLagShowsAppliedAndFetched(t *testing.T) {
	metrics := `# TYPE sluice_ingest_applied_lag_records gauge
sluice_ingest_applied_lag_records{slot="0"} 12
sluice_ingest_applied_lag_records{slot="1"} 0
# TYPE sluice_ingest_lag_records gauge
sluice_ingest_lag_records{slot="0"} 0
`
	var out bytes.Buffer
	if err := printIngestLag(&out, strings.NewReader(metrics)); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"SLOT   APPLIED  FETCHED\n", "0      12       0\n", "1      0        -\n", "total  12       0\n", "APPLIED 0 = all readable"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}
