// Package client is sluice's Go client.
//
//	c, err := client.New("127.0.0.1:7400")
//	defer c.Close()
//	_, err = c.Upsert(ctx, client.Entry{Key: []byte("k"), Value: []byte("v")})
//	v, found, err := c.Get(ctx, []byte("k"))
//
// It follows BadNode answers to the key's owner and retries, with backoff,
// answers that mean "not now" (Unavailable, ResourceExhausted) until the
// context ends.
package client

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// Entry is one key and its value.
type Entry struct {
	Key   []byte
	Value []byte
}

// Value is what Get returns.
type Value struct {
	Data      []byte
	Version   uint64
	Timestamp uint64
}

// Client talks to a sluice cluster through one or more entry nodes.
type Client struct {
	entry string
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
	// MaxAttempts bounds the tries of one call. Default 20.
	MaxAttempts int
}

// New returns a client that enters the cluster through addrs[0].
func New(addrs ...string) (*Client, error) {
	if len(addrs) == 0 || addrs[0] == "" {
		return nil, fmt.Errorf("client: no address")
	}
	return &Client{entry: addrs[0], conns: make(map[string]*grpc.ClientConn), MaxAttempts: 20}, nil
}

func (c *Client) data(addr string) (sluicev1.DataClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cc, ok := c.conns[addr]
	if !ok {
		var err error
		cc, err = grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(8<<20), grpc.MaxCallRecvMsgSize(8<<20)))
		if err != nil {
			return nil, err
		}
		c.conns[addr] = cc
	}
	return sluicev1.NewDataClient(cc), nil
}

// do runs call against the entry node, following BadNode and retrying
// transient answers.
func (c *Client) do(ctx context.Context, call func(sluicev1.DataClient) error) error {
	addr := c.entry
	backoff := 20 * time.Millisecond
	var err error
	for attempt := 0; attempt < c.MaxAttempts; attempt++ {
		var dc sluicev1.DataClient
		dc, err = c.data(addr)
		if err != nil {
			return err
		}
		err = call(dc)
		st := status.Convert(err)
		switch st.Code() {
		case codes.FailedPrecondition:
			if bn := badNode(st); bn != nil && bn.Addr != "" && bn.Addr != addr {
				addr = bn.Addr
				continue
			}
			return err
		case codes.Unavailable, codes.ResourceExhausted:
		default:
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
	return err
}

func badNode(st *status.Status) *sluicev1.BadNode {
	for _, d := range st.Details() {
		if bn, ok := d.(*sluicev1.BadNode); ok {
			return bn
		}
	}
	return nil
}

// Upsert writes entries; it returns one result per entry.
func (c *Client) Upsert(ctx context.Context, entries ...Entry) ([]*sluicev1.WriteResult, error) {
	req := &sluicev1.UpsertRequest{Entries: make([]*sluicev1.Entry, len(entries))}
	for i, e := range entries {
		req.Entries[i] = &sluicev1.Entry{Key: e.Key, Value: e.Value}
	}
	var resp *sluicev1.UpsertResponse
	err := c.do(ctx, func(dc sluicev1.DataClient) (err error) {
		resp, err = dc.Upsert(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp.Results, nil
}

// Get reads a key; found is false when it does not exist.
func (c *Client) Get(ctx context.Context, key []byte) (v Value, found bool, err error) {
	var resp *sluicev1.GetResponse
	err = c.do(ctx, func(dc sluicev1.DataClient) (err error) {
		resp, err = dc.Get(ctx, &sluicev1.GetRequest{Key: key})
		return err
	})
	if err != nil || !resp.Found {
		return Value{}, false, err
	}
	return Value{Data: resp.Value, Version: resp.Version, Timestamp: resp.Timestamp}, true, nil
}

// Remove deletes a key; existed says whether it was there.
func (c *Client) Remove(ctx context.Context, key []byte) (existed bool, err error) {
	err = c.do(ctx, func(dc sluicev1.DataClient) error {
		resp, err := dc.Remove(ctx, &sluicev1.RemoveRequest{Key: key})
		existed = err == nil && resp.Existed
		return err
	})
	return existed, err
}

// Close closes every connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cc := range c.conns {
		cc.Close()
	}
	c.conns = nil
	return nil
}
