package kfakerepair

import (
	"fmt"
	"path/filepath"
	"slices"
	"time"
)

// kfake commits or aborts a transaction by writing its marker to each of
// the transaction's partitions in turn, and then an "endtx" entry to
// pids.log (txns.go: doEnd, endTx). A process killed in between leaves the
// transaction ended in some partitions and, once kfake restarts and aborts
// what it finds open (persist.go: loadPartitionFullReplay), aborted in the
// others: half a transaction. For sluice that is half a batch of one
// partition, or an ingest record whose consumption was recorded (the
// changelog's part) while its forwarding to the slot that owns its key was
// lost — an acknowledged write gone. And kfake's abort at restart has no
// marker: after the next crash its batches read as part of the producer's
// next, committed, transaction.
//
// finishTransactions ends every transaction the log leaves open before
// kfake starts, as Kafka's coordinator would: committed only where the
// coordinator is known to have decided to commit it, aborted everywhere
// else, each with its marker and an entry in pids.log, so that the log
// says what happened.
//
// The decision is known from the coordinator's own records. kfake handles
// one request at a time, so a crash in the middle of an EndTxn leaves that
// EndTxn's markers as the producer's last in every partition they reached,
// the producer's open batches (in the partitions they did not reach) as
// that transaction's, and pids.log one "endtx" short for the epoch. All the
// markers of one EndTxn are one batch: the same coordinator timestamp and
// decision. So at a producer's epoch, one group of markers more than the
// endtx entries since the epoch was given out is an EndTxn the crash
// interrupted, and its decision is the open batches'. As many groups as
// entries means every EndTxn finished: the open batches belong to a
// transaction that never reached EndTxn (a producer on EndTxn v0–4 keeps
// its epoch from one transaction to the next), and are aborted. Where
// pids.log no longer holds the epoch's start (kfake compacted it), nothing
// is known and the transaction is aborted. Record timestamps are the
// producer's CreateTime, not the broker's, and decide nothing.
//
// An abort is written as kfake writes one when a transaction times out: on
// the producer's next epoch (a "timeout" entry), which fences a zombie of
// the producer.
func finishTransactions(dir string, parts []partition, now time.Time) (finished []string, err error) {
	pids, err := readPIDsLog(filepath.Join(dir, "pids.log"))
	if err != nil {
		return nil, err
	}
	if !pids.known {
		return nil, nil // pids.log in a format unknown here: kfake aborts what is open itself
	}
	d := newDecider(parts, pids)
	fenced := map[int64]int16{} // producer → the epoch its open transactions were aborted with
	var ends []pidEntry
	for _, p := range parts {
		open := openTransactions(p.batches)
		producers := make([]int64, 0, len(open))
		for pid := range open {
			producers = append(producers, pid)
		}
		slices.Sort(producers)
		for _, pid := range producers {
			o := open[pid]
			commit, ms := d.decide(pid, o.epoch)
			epoch := o.epoch
			if !commit {
				if _, ok := fenced[pid]; !ok {
					fenced[pid] = max(d.epochs[pid], pids.lastEpoch(pid)) + 1
					ends = append(ends, pidEntry{Type: "timeout", PID: pid, Epoch: fenced[pid]})
				}
				epoch, ms = fenced[pid], now.UnixMilli()
			} else if !slices.ContainsFunc(ends, func(e pidEntry) bool { return e.Type == "endtx" && e.PID == pid && e.Epoch == epoch }) {
				yes := true
				ends = append(ends, pidEntry{Type: "endtx", PID: pid, Epoch: epoch, Commit: &yes})
			}
			last := p.batches[len(p.batches)-1]
			if err := appendSync(last.segment, marker(commit, pid, epoch, last.leaderEpoch, last.next, ms)); err != nil {
				return finished, err
			}
			p.batches = append(p.batches, batch{segment: last.segment, next: last.next + 1, pid: pid, epoch: epoch,
				leaderEpoch: last.leaderEpoch, txn: true, control: true, commit: commit, ts: ms})
			what := "aborted"
			if commit {
				what = "committed"
			}
			finished = append(finished, fmt.Sprintf("%s: producer %d epoch %d %s", p.name, pid, o.epoch, what))
		}
	}
	// The coordinator's record goes last, as kfake writes it: a crash
	// before it leaves markers the next repair reads as this one's
	// unfinished decision, and finishes.
	return finished, pids.appendEntries(ends...)
}

// openTransactions returns, for each producer with a transaction open at
// the end of a partition's batches, its open transaction's first batch of
// the latest epoch.
func openTransactions(bs []batch) map[int64]batch {
	open := map[int64]batch{}
	for _, b := range bs {
		switch o, in := open[b.pid]; {
		case b.control:
			delete(open, b.pid)
		case b.txn && (!in || o.epoch != b.epoch):
			open[b.pid] = b
		}
	}
	return open
}

type producerEpoch struct {
	pid   int64
	epoch int16
}

// group is one EndTxn's markers: one batch, written to each partition.
type group struct {
	ts     int64
	commit bool
}

type decider struct {
	pids   pidsLog
	epochs map[int64]int16                 // each producer's highest epoch in the segments
	groups map[producerEpoch]map[group]int // → how many EndTxns wrote markers of that batch (the most in one partition)
	last   map[producerEpoch]map[group]bool
	// last holds, per producer and epoch, the groups whose markers are the
	// producer's last in every partition they are in: the only candidates
	// for an EndTxn cut short.
}

func newDecider(parts []partition, pids pidsLog) decider {
	d := decider{pids: pids, epochs: map[int64]int16{}, groups: map[producerEpoch]map[group]int{}, last: map[producerEpoch]map[group]bool{}}
	notLast := map[producerEpoch]map[group]bool{}
	for _, p := range parts {
		count := map[producerEpoch]map[group]int{}
		final := map[int64]int{} // producer → the index of its last marker here
		for i, b := range p.batches {
			if b.pid < 0 {
				continue
			}
			d.epochs[b.pid] = max(d.epochs[b.pid], b.epoch)
			if !b.control {
				continue
			}
			pe, g := producerEpoch{b.pid, b.epoch}, group{b.ts, b.commit}
			if count[pe] == nil {
				count[pe] = map[group]int{}
			}
			count[pe][g]++
			final[b.pid] = i
		}
		for pe, gs := range count {
			if d.groups[pe] == nil {
				d.groups[pe] = map[group]int{}
			}
			for g, n := range gs {
				d.groups[pe][g] = max(d.groups[pe][g], n)
			}
		}
		for i, b := range p.batches {
			if !b.control || b.pid < 0 {
				continue
			}
			pe, g := producerEpoch{b.pid, b.epoch}, group{b.ts, b.commit}
			fb := p.batches[final[b.pid]]
			switch {
			case i == final[b.pid]:
				if d.last[pe] == nil {
					d.last[pe] = map[group]bool{}
				}
				d.last[pe][g] = true
			case fb.epoch == b.epoch && (group{fb.ts, fb.commit}) == g:
				// Two EndTxns of the epoch in one millisecond, with one
				// decision: the same group by its key. The later is last.
			default:
				if notLast[pe] == nil {
					notLast[pe] = map[group]bool{}
				}
				notLast[pe][g] = true
			}
		}
	}
	for pe, gs := range notLast {
		for g := range gs {
			delete(d.last[pe], g)
		}
	}
	return d
}

// decide says whether producer pid's open transaction at epoch is known to
// have been committed by an EndTxn the crash cut short, and that EndTxn's
// marker time.
func (d decider) decide(pid int64, epoch int16) (commit bool, ms int64) {
	pe := producerEpoch{pid, epoch}
	ended, known := d.pids.ended(pid, epoch)
	if !known {
		return false, 0
	}
	n := 0
	for _, c := range d.groups[pe] {
		n += c
	}
	if n != ended+1 {
		return false, 0
	}
	// The groups last everywhere they are are the candidates; when they
	// do not agree, the decision is not known.
	for g := range d.last[pe] {
		if !g.commit {
			return false, 0
		}
		ms = max(ms, g.ts)
	}
	return len(d.last[pe]) > 0, ms
}
