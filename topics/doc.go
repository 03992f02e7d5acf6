// Package topics is the cluster's Kafka topics: their names (each prefixed
// with the cluster's name: <cluster>.changelog, .ingest, .ingest.dlq,
// .registry, and the partitions' transactional ids), the creation of those
// that are missing, and the settings sluice needs of them, read from the
// broker and checked (a compacted changelog, delete.retention.ms,
// max.message.bytes).
//
//	names := topics.Names{Cluster: "sluice"}
//	st, err := topics.Ensure(ctx, cl, names, 16, 3) // st.Slots, st.Retention, st.Created
//	for _, m := range st.Mismatches {
//		log.Warn().Msg(m.String()) // "topic sluice.changelog has cleanup.policy=delete, sluice needs compact: …"
//	}
package topics
