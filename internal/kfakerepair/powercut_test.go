package kfakerepair

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A power cut after a repair loses what kfake wrote since (kfake never
// syncs) and keeps what the repair synced: the segment is back at exactly
// the size the repair left (which it noted in sluice-repaired.json, and took
// a log of that size for one kfake had not written since). A reader (a node's
// store or ingest position, whose own disk kept its pages) had read a
// record written after the first repair. The second repair must still
// move the log past that record's offset; the next record must not take
// it again.
//
// Found from outside (helper N): `sluice serve`, kill -9, restart, 100
// puts, kill -9, each segment truncated to its size in
// sluice-repaired.json (snapshot.json removed): the node never serves
// again ("the state to replay onto has reached offset 1073741855 but the
// log ends at 1073741830"), and kcat records produced after the restart
// are never applied.
func TestAPowerCutBackToTheRepairedSizesStillSkips(t *testing.T) {
	c, dir, ctx := startKfake(t, "a")
	produce := func(c interface{ ListenAddrs() []string }, key string) int64 {
		t.Helper()
		w, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("a"))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		res := w.ProduceSync(ctx, &kgo.Record{Key: []byte(key)})
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
		return res[0].Record.Offset
	}
	for i := range 3 {
		produce(c, fmt.Sprint("r", i))
	}
	waitForBatches(t, filepath.Join(dir, "partitions", "a-0", "0.dat"), 3)
	img := crashImage(t, dir) // kill -9
	c.Close()

	if rep, err := Repair(img, time.Now()); err != nil || len(rep.Skipped) != 1 {
		t.Fatalf("first repair: %v (%v), want one gap", rep.Lines(), err)
	}
	seg := filepath.Join(img, "partitions", "a-0", "0.dat")
	st, err := os.Stat(seg)
	if err != nil {
		t.Fatal(err)
	}
	synced := st.Size()                  // what the repair synced: all a power cut keeps
	if err := Opening(img); err != nil { // as the node does before kfake starts
		t.Fatal(err)
	}
	c = restartKfake(t, img)
	read := produce(c, "after-repair") // the reader reads it: its position is read+1
	waitForBatches(t, seg, 5)          // 3 records, the gap, after-repair
	img2 := crashImage(t, img)         // the next crash
	c.Close()

	seg2 := filepath.Join(img2, "partitions", "a-0", "0.dat")
	if err := os.Truncate(seg2, synced); err != nil { // the power cut
		t.Fatal(err)
	}
	os.Remove(filepath.Join(img2, "partitions", "a-0", "snapshot.json"))
	rep, err := Repair(img2, time.Now())
	if err != nil {
		t.Fatalf("second repair: %v", err)
	}
	c = restartKfake(t, img2)
	defer c.Close()
	if at := produce(c, "new"); at <= read {
		t.Fatalf("after a power cut back to the repaired sizes (repair did %v), the next record took offset %d, which a reader had passed (it read offset %d)", rep.Lines(), at, read)
	}
}
