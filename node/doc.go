// Package node assembles one `sluice serve` process: Kafka (given brokers or an
// embedded kfake broker), the cluster's topics, the node's partitions with
// their Badger stores, the data-plane gRPC server and the HTTP port for
// metrics, health and pprof.
//
//	n, err := node.Start(ctx, node.Config{DataDir: "data"})
//	defer n.Close()
//	fmt.Println(n.DataAddr())
package node
