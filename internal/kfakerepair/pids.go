package kfakerepair

import (
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"os"
)

// pids.log is kfake's transaction coordinator log (persist.go: writeEntry,
// readEntries, loadPIDsLog): entries of [length][crc32c][version 1][JSON],
// little-endian. The coordinator appends
//
//   - "init" when it gives a producer an epoch (InitProducerID, and after
//     each EndTxn v5+, which starts the next transaction on a new epoch);
//   - "endtx", with the decision, once it has written every marker of a
//     transaction (txns.go: doEnd) — so a crash while it writes them
//     leaves some markers and no entry;
//   - "timeout" when it aborts a transaction on a new epoch.
//
// kfake rewrites the log as one "init" per producer when it compacts it or
// shuts down; such an entry carries the last decision ("commit"), which an
// "init" that gives out an epoch never does.
type pidEntry struct {
	Type    string `json:"type"`
	PID     int64  `json:"pid"`
	Epoch   int16  `json:"epoch"`
	TxID    string `json:"txid,omitempty"`
	Timeout int32  `json:"timeout,omitempty"`
	Commit  *bool  `json:"commit,omitempty"`
}

// pidsLog is what the repair knows of pids.log.
type pidsLog struct {
	path    string
	entries []pidEntry
	known   bool // in the entry format this package knows
}

// readPIDsLog reads dir's pids.log, cutting a torn entry off its end as
// kfake ignores one, so that what is appended after is read.
func readPIDsLog(path string) (pidsLog, error) {
	l := pidsLog{path: path, known: true}
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return l, nil
	}
	if err != nil {
		return l, err
	}
	pos := 0
	for pos+10 <= len(raw) {
		n := int(binary.LittleEndian.Uint32(raw[pos:]))
		if n < 2 || pos+8+n > len(raw) || crc32.Checksum(raw[pos+8:pos+8+n], castagnoli) != binary.LittleEndian.Uint32(raw[pos+4:]) {
			break
		}
		if binary.LittleEndian.Uint16(raw[pos+8:]) != 1 {
			l.known = false
			return l, nil
		}
		var e pidEntry
		if json.Unmarshal(raw[pos+10:pos+8+n], &e) == nil {
			l.entries = append(l.entries, e)
		}
		pos += 8 + n
	}
	if pos < len(raw) {
		if err := truncate(path, int64(pos)); err != nil {
			return l, err
		}
	}
	return l, nil
}

// lastEpoch is the highest epoch the log gives producer pid.
func (l pidsLog) lastEpoch(pid int64) int16 {
	var e int16
	for _, x := range l.entries {
		if x.PID == pid {
			e = max(e, x.Epoch)
		}
	}
	return e
}

// ended is how many transactions of producer pid at epoch ended (an endtx
// or timeout entry: every marker written) since the coordinator gave out
// that epoch; known is false when the log no longer says when it did
// (compacted, or never given out by an init).
func (l pidsLog) ended(pid int64, epoch int16) (n int, known bool) {
	for _, x := range l.entries {
		if x.PID != pid || x.Epoch != epoch {
			continue
		}
		switch {
		case x.Type == "init" && x.Commit == nil:
			n, known = 0, true
		case x.Type == "init":
			n, known = 0, false // a compacted summary: what came before is gone
		case x.Type == "endtx" || x.Type == "timeout":
			n++
		}
	}
	return n, known
}

// appendEntries appends entries to pids.log and makes them durable.
func (l *pidsLog) appendEntries(entries ...pidEntry) error {
	var b []byte
	for _, e := range entries {
		data, _ := json.Marshal(e)
		body := binary.LittleEndian.AppendUint16(nil, 1)
		body = append(body, data...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(body)))
		b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(body, castagnoli))
		b = append(b, body...)
	}
	if len(b) == 0 {
		return nil
	}
	if err := appendSync(l.path, b); err != nil {
		return err
	}
	l.entries = append(l.entries, entries...)
	return nil
}
