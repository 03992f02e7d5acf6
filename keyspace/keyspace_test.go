package keyspace

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The decided property: a key lands in the slot that Kafka's default
// partitioner (as franz-go implements it for Java compatibility) picks.
func TestSlotMatchesKafkaDefaultPartitioner(t *testing.T) {
	for _, n := range []int{1, 3, 16, 64} {
		p := kgo.StickyKeyPartitioner(nil).ForTopic("t")
		for i := 0; i < 2000; i++ {
			key := []byte(fmt.Sprintf("key-%d-%s", i, string(make([]byte, i%7))))
			want := p.Partition(&kgo.Record{Key: key}, n)
			if got := Slot(key, int32(n)); int(got) != want {
				t.Fatalf("Slot(%q, %d) = %d, Kafka's partitioner says %d", key, n, got, want)
			}
		}
	}
}

// Vectors from Kafka's UtilsTest.testMurmur2.
func TestMurmur2KafkaVectors(t *testing.T) {
	cases := map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	}
	for in, want := range cases {
		if got := int32(murmur2([]byte(in))); got != want {
			t.Errorf("murmur2(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestSplitCoversAllSlots(t *testing.T) {
	for _, tc := range []struct {
		slots int32
		n     int
	}{{16, 1}, {16, 4}, {16, 16}, {16, 5}, {7, 3}} {
		rs := Split(tc.slots, tc.n)
		if len(rs) != tc.n || rs[0].From != 0 || rs[len(rs)-1].To != tc.slots {
			t.Fatalf("Split(%d,%d) = %v", tc.slots, tc.n, rs)
		}
		for i := 1; i < len(rs); i++ {
			if rs[i].From != rs[i-1].To || rs[i].Len() == 0 {
				t.Fatalf("Split(%d,%d) = %v: gap or empty range", tc.slots, tc.n, rs)
			}
		}
	}
}

func TestRange(t *testing.T) {
	r := Range{From: 4, To: 8}
	if !r.Contains(4) || r.Contains(8) || r.Contains(3) {
		t.Fatal("Contains is not half-open")
	}
	if !r.Overlaps(Range{7, 9}) || r.Overlaps(Range{8, 9}) || r.Overlaps(Range{0, 4}) {
		t.Fatal("Overlaps wrong")
	}
	if err := (Range{3, 3}).Validate(16); err == nil {
		t.Fatal("empty range accepted")
	}
	if err := (Range{0, 17}).Validate(16); err == nil {
		t.Fatal("range past the slot count accepted")
	}
}
