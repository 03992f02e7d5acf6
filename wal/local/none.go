package local

import (
	"context"
	"fmt"
	"sync"

	"github.com/sluicedb/sluice/store"
	"github.com/sluicedb/sluice/wal"
)

// None is the log of --wal none: there is none. An append numbers its
// records after the store's offsets and is committed at once; the loop then
// applies it to the (memory) store, whose backups are all there is.
type None struct {
	st  store.Store
	mu  sync.Mutex
	gen uint64
}

// NewNone returns the (absent) log of the partition stored in st.
func NewNone(st store.Store) *None { return &None{st: st} }

// NewAppender fences the older appenders and numbers after the store's offsets.
func (n *None) NewAppender(_ context.Context) (wal.Appender, error) {
	offsets, err := n.st.Offsets()
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.gen++
	return &noneAppender{n: n, gen: n.gen, seq: sequence{next: offsets}}, nil
}

type noneAppender struct {
	n   *None
	gen uint64
	seq sequence
}

func (a *noneAppender) Append(_ context.Context, g *wal.Group) ([]int64, error) {
	a.n.mu.Lock()
	fenced := a.gen != a.n.gen
	a.n.mu.Unlock()
	if fenced {
		return nil, fmt.Errorf("%w: %w", wal.ErrNotCommitted, ErrFenced)
	}
	offsets, b, err := a.seq.number(g)
	if err != nil {
		return nil, err
	}
	a.seq.commit(b)
	return offsets, nil
}

func (a *noneAppender) Close() {}
