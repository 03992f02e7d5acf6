// Package kafkatxn makes a franz-go transactional producer tell a commit
// from an abort: franz-go, asked to commit, can abort the transaction
// instead and return nil (commitwatch.go says when). A CommitWatch, put in
// front of the client's logger, notices it. The changelog's appender and the
// registry's writer both use one.
//
//	watch, opt, err := kafkatxn.WatchCommits(clientOpts)
//	cl, err := kgo.NewClient(append(producerOpts, opt)...)
//	watch.Reset()
//	// BeginTransaction, produce, EndTransaction(ctx, kgo.TryCommit) == nil
//	if watch.Aborted() { /* nothing was committed */ }
package kafkatxn
