package resp_test

import (
	"bufio"
	"context"
	"net"
	"testing"

	"github.com/sluicedb/sluice/node"
)

// BenchmarkGet is one client's GETs of one key, one at a time, against a
// node in this process: the RESP port's cost per command (the allocations
// include the data plane's Get and the node's own).
func BenchmarkGet(b *testing.B) {
	for _, level := range []string{"linearizable", "eventual"} {
		b.Run(level, func(b *testing.B) {
			n := startNode(b, node.Config{})
			if err := newClient(b, n).Set(context.Background(), "k", "value", 0).Err(); err != nil {
				b.Fatal(err)
			}
			c, err := net.Dial("tcp", n.RESPAddr())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			r := bufio.NewReader(c)
			c.Write(command("SLUICE.CONSISTENCY", level))
			if _, err := readReply(r); err != nil {
				b.Fatal(err)
			}
			cmd := command("GET", "k")
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				c.Write(cmd)
				if _, err := readReply(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
