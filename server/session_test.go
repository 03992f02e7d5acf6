package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/node"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// sessionReads does a SESSION Get, GetMany and Scan with token, each within
// ctx, and returns their errors by name (GetMany's: the call's, else its
// key's).
func sessionReads(ctx context.Context, data sluicev1.DataClient, token *sluicev1.Session) map[string]error {
	errs := map[string]error{}
	_, errs["Get"] = data.Get(ctx, &sluicev1.GetRequest{Key: []byte("k"), Consistency: sluicev1.Consistency_SESSION, Session: token})
	resp, err := data.GetMany(ctx, &sluicev1.GetManyRequest{Keys: [][]byte{[]byte("k")}, Consistency: sluicev1.Consistency_SESSION, Session: token})
	if err == nil && resp.Results[0].Error != nil { // the key's own answer
		err = status.Error(codes.Code(resp.Results[0].Error.Code), resp.Results[0].Error.Message)
	}
	errs["GetMany"] = err
	errs["Scan"] = func() error {
		st, err := data.Scan(ctx, &sluicev1.ScanRequest{Prefix: []byte("k"), Consistency: sluicev1.Consistency_SESSION, Session: token})
		if err != nil {
			return err
		}
		for {
			if _, err := st.Recv(); err != nil {
				return err
			}
		}
	}()
	return errs
}

// A made-up session token is refused, as Watch refuses it, instead of
// holding the read until its deadline (or forever without one): an offset
// past the changelog's end, a slot the cluster does not have, a negative
// offset. Every slot is named, so the key's slot is among them.
func TestSessionReadsRefuseMadeUpTokens(t *testing.T) {
	n := startNode(t)
	every := func(off int64) map[int32]int64 {
		m := map[int32]int64{}
		for s := range int32(16) {
			m[s] = off
		}
		return m
	}
	for _, tc := range []struct {
		name  string
		token *sluicev1.Session
		want  string
	}{
		{"past the end", &sluicev1.Session{Offsets: every(1 << 40)}, "offset 1099511627776 is past the changelog's end"},
		{"slot out of range", &sluicev1.Session{Offsets: map[int32]int64{16: 1}}, "slot 16 is not one of the cluster's 16 slots"},
		{"negative offset", &sluicev1.Session{Offsets: map[int32]int64{2: -5}}, "slot 2 has a negative offset -5"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		for rpc, err := range sessionReads(ctx, n.data, tc.token) {
			if s := status.Convert(err); s.Code() != codes.InvalidArgument || !strings.Contains(s.Message(), tc.want) {
				t.Errorf("%s: %s: %v, want INVALID_ARGUMENT with %q", tc.name, rpc, err, tc.want)
			}
		}
		cancel()
	}
}

// Without a changelog to check a token against (--wal disk), a session
// read waits for its offsets at most the session wait, then answers
// UNAVAILABLE (ask again), even with no deadline of its own.
func TestSessionReadWaitIsBounded(t *testing.T) {
	cfg := node.Config{Brokers: kafkatest.Brokers(t), Cluster: kafkatest.ClusterName(t), DataDir: t.TempDir(),
		DataAddr: "127.0.0.1:0", ControlAddr: "127.0.0.1:0", ControlToken: "test-token", HTTPAddr: "-", WAL: node.WALDisk,
		Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)}
	nd, err := node.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nd.Close() })
	deadline := time.Now().Add(60 * time.Second)
	for !nd.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("node not ready in 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	conn, err := grpc.NewClient(nd.DataAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	token := &sluicev1.Session{Offsets: map[int32]int64{}}
	for s := range int32(16) {
		token.Offsets[s] = 1 << 40
	}
	// A test's safety net, far past the session wait: the reads must end
	// on their own before it.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for rpc, err := range sessionReads(ctx, sluicev1.NewDataClient(conn), token) {
		if s := status.Convert(err); s.Code() != codes.Unavailable || !strings.Contains(s.Message(), "session wait") {
			t.Errorf("%s: %v, want UNAVAILABLE naming the session wait", rpc, err)
		}
	}
}
