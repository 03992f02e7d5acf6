package node

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sluicedb/sluice/store"
)

// The outside tester's D1: nothing was logged when badger's value-log sync
// failed (store.BadgerOptions set no logger). A partition's badger logs its
// errors through the node's log, naming the partition.
func TestBadgerLogsThroughTheNodesLog(t *testing.T) {
	for _, wal := range []string{WALKafka, WALDisk} {
		var buf bytes.Buffer
		n := &Node{cfg: Config{WAL: wal, Log: zerolog.New(&buf)}}
		st, err := n.openStore(7, t.TempDir(), false)
		if err != nil {
			t.Fatal(err)
		}
		log := st.(*store.Badger).DB().Opts().Logger
		if log == nil {
			st.Close()
			t.Fatalf("--wal %s: the partition's badger logs nowhere", wal)
		}
		log.Errorf("Error while curlf sync: %v\n", errors.New("no space left on device"))
		st.Close()
		if line := buf.String(); !strings.Contains(line, `"level":"error"`) || !strings.Contains(line, `"partition":7`) ||
			!strings.Contains(line, "curlf sync: no space left on device") {
			t.Fatalf("--wal %s: badger's error logged as %q", wal, line)
		}
	}
}
