// Package changelog is sluice's write-ahead log on Kafka, wrapped narrowly:
// Appender appends a group of change records in one Kafka transaction, and
// Decoded turns what kafkaread reads back (Replay, Tail) into the log's
// records. The cluster's topics are named and created by package topics.
//
//	app, err := changelog.NewAppender(ctx, changelog.AppenderConfig{
//		Client: []kgo.Opt{kgo.SeedBrokers(brokers...)},
//		Topics: names, TransactionalID: names.TransactionalID(1),
//	})
//	err = app.Append(ctx, recs) // committed, or an error: never half
//
// A change record is a Kafka record in the key's slot: key = user key, value =
// the new value (null for a removal, so compaction can drop it), and a header
// "sluice" carrying flags, version, clock stamp and epoch.
package changelog
