package snapshot

import "maps"

// Backups decides when a partition of --wal none is backed up to the
// bucket: at each tick of its owner's timer (node's BackupEvery; the
// partition simulator's in simulated time), only while the partition
// serves (a restoring one: the bucket already holds what it has) and only
// when its store moved since the last backup that reached the bucket. It
// reads no clock and starts nothing: the caller owns the timer.
type Backups struct {
	last map[int32]int64 // the offsets of the last backup uploaded
}

// Offsetter is a store whose offsets say whether it changed.
type Offsetter interface {
	Offsets() (map[int32]int64, error)
}

// Due says whether a backup of st is due at a tick, serving saying whether
// its partition serves.
func (b *Backups) Due(serving bool, st Offsetter) bool {
	if !serving {
		return false
	}
	now, err := st.Offsets()
	return err == nil && !maps.Equal(now, b.last)
}

// Uploaded records that the backup m reached the bucket.
func (b *Backups) Uploaded(m Manifest) { b.last = m.Offsets }
