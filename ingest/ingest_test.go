package ingest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/kv"
)

func TestParse(t *testing.T) {
	h := func(kv ...string) []kgo.RecordHeader {
		var out []kgo.RecordHeader
		for i := 0; i < len(kv); i += 2 {
			out = append(out, kgo.RecordHeader{Key: kv[i], Value: []byte(kv[i+1])})
		}
		return out
	}
	cases := []struct {
		name    string
		rec     *kgo.Record
		remove  bool
		ttl     time.Duration
		wantErr string
	}{
		{"upsert", &kgo.Record{Key: []byte("k"), Value: []byte("v")}, false, 0, ""},
		{"empty value is an upsert of nothing", &kgo.Record{Key: []byte("k"), Value: []byte{}}, false, 0, ""},
		{"null value removes", &kgo.Record{Key: []byte("k")}, true, 0, ""},
		{"op=remove with a value", &kgo.Record{Key: []byte("k"), Value: []byte("v"), Headers: h("op", "remove")}, true, 0, ""},
		{"ttl", &kgo.Record{Key: []byte("k"), Value: []byte("v"), Headers: h("ttl", " 30 ")}, false, 30 * time.Second, ""},
		{"bad ttl", &kgo.Record{Key: []byte("k"), Value: []byte("v"), Headers: h("ttl", "-1")}, false, 0, `ttl="-1"`},
		{"bad op", &kgo.Record{Key: []byte("k"), Value: []byte("v"), Headers: h("op", "merge")}, false, 0, `op="merge"`},
		{"op=upsert without value", &kgo.Record{Key: []byte("k"), Headers: h("op", "upsert")}, false, 0, "null value"},
		{"other headers pass", &kgo.Record{Key: []byte("k"), Value: []byte("v"), Headers: h("content-type", "json")}, false, 0, ""},
	}
	for _, tc := range cases {
		tc.rec.Partition, tc.rec.Offset = 3, 42
		got := Parse(tc.rec)
		if tc.wantErr != "" {
			if !errors.Is(got.Err, kv.ErrInvalid) || !strings.Contains(got.Err.Error(), tc.wantErr) {
				t.Errorf("%s: err %v, want one naming %q", tc.name, got.Err, tc.wantErr)
			}
			continue
		}
		if got.Err != nil || got.Remove != tc.remove || got.TTL != tc.ttl || got.Slot != 3 || got.Offset != 42 {
			t.Errorf("%s: %+v", tc.name, got)
		}
		if !got.Remove && got.Value == nil {
			t.Errorf("%s: an upsert with a nil value", tc.name)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("k"), []byte("v"), "ttl", []byte("30"))
	f.Add([]byte("k"), []byte(nil), "op", []byte("upsert"))
	f.Fuzz(func(t *testing.T, key, value []byte, hk string, hv []byte) {
		r := Parse(&kgo.Record{Key: key, Value: value, Headers: []kgo.RecordHeader{{Key: hk, Value: hv}}})
		if r.Err == nil && r.Remove && r.Value != nil {
			t.Fatal("a removal carries a value")
		}
		if r.Err != nil && !errors.Is(r.Err, kv.ErrInvalid) {
			t.Fatalf("a parse error that is not InvalidArgument: %v", r.Err)
		}
	})
}
