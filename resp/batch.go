package resp

import (
	"github.com/sluicedb/sluice/kv"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// A pipeline of writes would wait for one commit per command, one after
// the other: a client that pipelines SETs on one connection (redis-cli
// --pipe) got a few hundred a second. So a run of SETs without NX or XX
// whose keys are all in one partition this node owns is one Upsert: one
// commit, applied atomically and in order, so that nobody can see a later
// SET of the run without the earlier ones (as with one command at a time).
// SETs to different partitions stay one at a time: their commits are
// independent, and a later one must not be seen before an earlier one.
const maxRunEntries = 1000

// setRun is how many commands from i on (at most n) form such a run.
func (c *conn) setRun(args func(int) [][]byte, i, n int) int {
	if i+1 >= n || c.s.data.Table == nil {
		return 0
	}
	t := c.s.data.Table()
	if t == nil {
		return 0
	}
	var (
		part  uint32
		bytes int
		k     int
	)
	for ; i+k < n && k < maxRunEntries; k++ {
		a := args(i + k)
		if len(a) < 3 || len(a[0]) != 3 || (a[0][0]|0x20) != 's' || (a[0][1]|0x20) != 'e' || (a[0][2]|0x20) != 't' {
			break
		}
		if _, nx, xx, bad := parseSet(a); bad != "" || nx || xx || kv.ValidateKey(a[1]) != nil {
			break
		}
		_, owner, ok := t.Lookup(a[1])
		if !ok || owner.Node != c.s.data.Node || (k > 0 && owner.ID != part) {
			break
		}
		if bytes += len(a[1]) + len(a[2]); bytes > kv.MaxBatchBytes {
			break
		}
		part = owner.ID
	}
	return k
}

// setMany writes the run of k SETs from i as one Upsert. An answer that
// says it was not applied (the partition moved, restoring, full, or a
// stage of the write pipeline refused an entry) makes each SET run on its
// own, in order; any other failure answers every SET of the run with it.
func (c *conn) setMany(args func(int) [][]byte, i, k int) {
	req := &sluicev1.UpsertRequest{Entries: make([]*sluicev1.Entry, k)}
	for j := range k {
		req.Entries[j], _, _, _ = parseSet(args(i + j))
	}
	resp, err := c.s.data.Upsert(c.ctx, req)
	switch {
	case err == nil:
		c.observe(resp.Session)
		for range k {
			c.ok()
		}
	case retryable(err, false) || isInvalid(err):
		for j := range k {
			c.run(args(i+j), len(c.out))
			if c.dead {
				return
			}
		}
	default:
		for range k {
			c.reply(err)
		}
	}
}
