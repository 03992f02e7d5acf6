package changelog

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fault injection in-process (kfake): a commit the coordinator refuses is an
// error from Append, never a success, and the records stay invisible to a
// read_committed replay.
func TestRefusedCommitIsAnErrorAndInvisible(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	tp := Topics{Cluster: "fault"}
	if _, err := EnsureTopics(ctx, cl, tp, 1, 1); err != nil {
		t.Fatal(err)
	}
	app, err := NewAppender(ctx, AppenderConfig{Client: opts, TransactionalID: tp.TransactionalID(1), DeliveryTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()

	failed := make(chan struct{})
	c.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if req.(*kmsg.EndTxnRequest).Commit {
			select {
			case <-failed:
			default:
				close(failed)
			}
			c.KeepControl()
			resp := req.ResponseKind().(*kmsg.EndTxnResponse)
			resp.ErrorCode = kerr.InvalidTxnState.Code
			return resp, nil, true
		}
		c.DropControl()
		return nil, nil, false
	})
	err = app.Append(ctx, []*kgo.Record{Change{Key: []byte("lost"), Value: []byte("v"), Version: 1}.Record(tp.Changelog(), 0)})
	<-failed
	if !errors.Is(err, ErrNotCommitted) {
		t.Fatalf("Append = %v, want ErrNotCommitted for a refused commit", err)
	}
	n := 0
	if _, err := Replay(ctx, opts, tp.Changelog(), map[int32]int64{0: 0}, func(b Batch) error { n += len(b.Records); return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d records of an unacknowledged group are visible", n)
	}
}

// A broker whose metadata does not know a just-created topic yet answers
// UNKNOWN_TOPIC_OR_PARTITION for a moment: EnsureTopics asks again instead of
// failing the node's start.
func TestEnsureTopicsWaitsForMetadataOfNewTopics(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	tp := Topics{Cluster: "lagging"}
	var unknown atomic.Int32 // the cluster's goroutine counts down, the test reads
	unknown.Store(3)
	c.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		m := req.(*kmsg.MetadataRequest)
		if unknown.Load() == 0 || len(m.Topics) != 1 || m.Topics[0].Topic == nil || *m.Topics[0].Topic != tp.Changelog() {
			return nil, nil, false
		}
		unknown.Add(-1)
		resp := m.ResponseKind().(*kmsg.MetadataResponse)
		st := kmsg.NewMetadataResponseTopic()
		st.Topic = kmsg.StringPtr(tp.Changelog())
		st.ErrorCode = kerr.UnknownTopicOrPartition.Code
		resp.Topics = append(resp.Topics, st)
		return resp, nil, true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := EnsureTopics(ctx, cl, tp, 4, 1)
	if err != nil || got != 4 {
		t.Fatalf("EnsureTopics = %d, %v; want 4 slots once the topic is known", got, err)
	}
	if n := unknown.Load(); n != 0 {
		t.Fatalf("%d UNKNOWN_TOPIC_OR_PARTITION answers were never asked for", n)
	}
}
