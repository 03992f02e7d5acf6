// Package store is a partition's local state: the committed value of every key
// and, in the same write, how far into each changelog slot that state reaches.
//
//	st, _ := store.OpenBadger(dir, store.DefaultBadgerOptions())
//	_ = st.Apply(kv.Write{
//		Changes: []kv.Change{{Key: k, Value: v, Version: 1, Timestamp: ts}},
//		Offsets: map[int32]int64{3: 1042}, // next changelog offset to read in slot 3
//	})
//	v, ok, _ := st.Get(k)
//
// Apply writes changes and offsets together, so local state and "how far in the
// changelog am I" can never disagree (goka's storeEvent writes them apart: the
// mistake to avoid). Replaying a change twice yields the same state, so a
// restart may safely re-read records the store already holds.
package store
