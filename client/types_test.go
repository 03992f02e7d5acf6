package client_test

import (
	"context"
	"time"

	"github.com/sluicedb/sluice/client"
)

// Issue 28.11: a program uses the whole client without importing the
// generated protobuf package: a TTL, a read level, a session, the results.
func Example() {
	c, err := client.Dial([]string{"127.0.0.1:7400"}, client.WithDialTimeout(2*time.Second))
	if err != nil {
		return
	}
	defer c.Close()
	ctx := context.Background()
	var results []*client.WriteResult
	results, _ = c.Upsert(ctx, client.Entry{Key: []byte("k"), Value: []byte("v"), TTL: time.Hour})
	_ = results
	var s *client.Session = c.Session()
	_, _, _ = c.GetSession(ctx, []byte("k"), s)
	_, _ = c.GetMany(ctx, [][]byte{[]byte("k")}, client.ReadOptions{Consistency: client.Eventual})
	_, _ = c.IncrementTTL(ctx, []byte("hits"), 1, time.Minute)
}
