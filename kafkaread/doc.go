// Package kafkaread reads the slots (partitions) of a Kafka topic committed
// (read_committed), with franz-go: Replay reads them from given offsets up to
// their last stable offset at the call, Tail follows them until its context
// ends, and CheckOffsets refuses a start outside the log. A slot's position
// moves past everything the broker answers with, records or not: commit and
// abort markers, aborted batches (with or without a marker: aborted.go) and
// gaps left by compaction. The changelog's replay, the standbys' and the
// watches' tails, the registry's view and the ingest consumer all read
// this way.
//
//	reached, err := kafkaread.Replay(ctx, opts, topic, map[int32]int64{0: 0}, func(s kafkaread.Step) error {
//		for _, r := range s.Records {
//			// r.Partition, r.Offset, r.Key, r.Value
//		}
//		return nil
//	}, kafkaread.OnStall(func(s *kafkaread.Stall) { /* nil: moving again */ }))
package kafkaread
