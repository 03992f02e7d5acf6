package changelog

import (
	"bytes"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/kv"
)

func rec(key, value string, version uint64) kv.Record {
	return kv.Record{Kind: kv.KindChange, Change: kv.Change{Key: []byte(key), Value: []byte(value), Version: version}}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range []kv.Record{
		{Kind: kv.KindChange, Slot: 5, Change: kv.Change{Key: []byte("k"), Value: []byte("v"), Version: 1, Timestamp: 1 << 40}, Epoch: 2},
		{Kind: kv.KindChange, Slot: 5, Change: kv.Change{Key: []byte("k"), Value: []byte{}, Version: 3, ExpiresAt: 77}},
		{Kind: kv.KindChange, Slot: 5, Change: kv.Change{Key: []byte("k"), Remove: true, Version: 4, Timestamp: 9}, Epoch: 1},
		{Kind: kv.KindChange, Slot: 5, Change: kv.Change{Key: []byte("k"), Value: []byte("i"), Version: 2}, Ingest: &kv.Source{Slot: 3, Offset: 41}},
		{Kind: kv.KindMark, Slot: 5, Epoch: 3, Ingest: &kv.Source{Slot: 5, Offset: 42}},
		{Kind: kv.KindHeartbeat, Slot: 5, Epoch: 3},
	} {
		rec := Encode("t", r)
		if rec.Partition != 5 || rec.Topic != "t" {
			t.Fatalf("record placed at %s/%d", rec.Topic, rec.Partition)
		}
		if r.Change.Remove != (rec.Value == nil) {
			t.Fatalf("remove must be a Kafka tombstone (null value) for compaction: %+v", rec)
		}
		got, err := Decode(rec)
		if err != nil {
			t.Fatal(err)
		}
		g, c := got.Change, r.Change
		if got.Kind != r.Kind || got.Slot != r.Slot || got.Epoch != r.Epoch || !bytes.Equal(g.Key, c.Key) || !bytes.Equal(g.Value, c.Value) ||
			g.Remove != c.Remove || g.Version != c.Version || g.Timestamp != c.Timestamp || g.ExpiresAt != c.ExpiresAt || (got.Ingest == nil) != (r.Ingest == nil) ||
			(got.Ingest != nil && *got.Ingest != *r.Ingest) {
			t.Fatalf("round trip: %+v became %+v", r, got)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	good := Encode("t", rec("k", "", 1)).Headers[0].Value
	for name, r := range map[string]*kgo.Record{
		"no header":        {Key: []byte("k")},
		"unknown format":   {Key: []byte("k"), Headers: []kgo.RecordHeader{{Key: HeaderKey, Value: []byte{9, 0}}}},
		"truncated header": {Key: []byte("k"), Headers: []kgo.RecordHeader{{Key: HeaderKey, Value: good[:3]}}},
		"empty key":        {Headers: []kgo.RecordHeader{{Key: HeaderKey, Value: good}}},
		"mark and beat":    {Key: []byte("k"), Headers: []kgo.RecordHeader{{Key: HeaderKey, Value: []byte{formatV1, flagMark | flagBeat, 1, 1, 1, 1, 1}}}},
	} {
		if _, err := Decode(r); !errors.Is(err, ErrBadRecord) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("k"), []byte("v"), Encode("t", kv.Record{Kind: kv.KindChange, Change: kv.Change{Key: []byte("k"), Version: 7, Timestamp: 8}, Epoch: 9}).Headers[0].Value)
	f.Fuzz(func(t *testing.T, key, value, meta []byte) {
		r, err := Decode(&kgo.Record{Key: key, Value: value, Headers: []kgo.RecordHeader{{Key: HeaderKey, Value: meta}}})
		if err != nil {
			return
		}
		again, err := Decode(Encode("t", r))
		if err != nil || again.Kind != r.Kind || again.Change.Version != r.Change.Version || again.Change.Remove != r.Change.Remove || !bytes.Equal(again.Change.Key, r.Change.Key) {
			t.Fatalf("re-encoding a decoded record changed it: %+v / %+v %v", r, again, err)
		}
	})
}
