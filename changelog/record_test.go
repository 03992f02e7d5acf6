package changelog

import (
	"bytes"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, c := range []Change{
		{Key: []byte("k"), Value: []byte("v"), Version: 1, Timestamp: 1 << 40, Epoch: 2},
		{Key: []byte("k"), Value: []byte{}, Version: 3},
		{Key: []byte("k"), Remove: true, Version: 4, Timestamp: 9, Epoch: 1},
	} {
		r := c.Record("t", 5)
		if r.Partition != 5 || r.Topic != "t" {
			t.Fatalf("record placed at %s/%d", r.Topic, r.Partition)
		}
		if c.Remove != (r.Value == nil) {
			t.Fatalf("remove must be a Kafka tombstone (null value) for compaction: %+v", r)
		}
		got, err := Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Key, c.Key) || !bytes.Equal(got.Value, c.Value) || got.Remove != c.Remove || got.Version != c.Version || got.Timestamp != c.Timestamp || got.Epoch != c.Epoch {
			t.Fatalf("round trip: %+v became %+v", c, got)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	good := Change{Key: []byte("k"), Version: 1}.Record("t", 0).Headers[0].Value
	for name, r := range map[string]*kgo.Record{
		"no header":        {Key: []byte("k")},
		"unknown format":   {Key: []byte("k"), Headers: []kgo.RecordHeader{{Key: HeaderKey, Value: []byte{9, 0}}}},
		"truncated header": {Key: []byte("k"), Headers: []kgo.RecordHeader{{Key: HeaderKey, Value: good[:3]}}},
		"empty key":        {Headers: []kgo.RecordHeader{{Key: HeaderKey, Value: good}}},
	} {
		if _, err := Decode(r); !errors.Is(err, ErrBadRecord) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("k"), []byte("v"), Change{Key: []byte("k"), Version: 7, Timestamp: 8, Epoch: 9}.Record("t", 0).Headers[0].Value)
	f.Fuzz(func(t *testing.T, key, value, meta []byte) {
		c, err := Decode(&kgo.Record{Key: key, Value: value, Headers: []kgo.RecordHeader{{Key: HeaderKey, Value: meta}}})
		if err != nil {
			return
		}
		again, err := Decode(c.Record("t", 0))
		if err != nil || again.Version != c.Version || again.Remove != c.Remove || !bytes.Equal(again.Key, c.Key) {
			t.Fatalf("re-encoding a decoded record changed it: %+v / %+v %v", c, again, err)
		}
	})
}
