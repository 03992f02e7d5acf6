// Command sluice is the one binary: a node (serve) and a client (put, get, rm).
//
//	sluice serve                   # one node, embedded Kafka-protocol broker
//	sluice serve --brokers k:9092  # against a real Kafka cluster
//	sluice put KEY VALUE; sluice get KEY; sluice rm KEY
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := rootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "sluice:", err)
		os.Exit(1)
	}
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "sluice",
		Short:         "sluice is a partitioned key-value service whose write-ahead log is Kafka",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd(), putCmd(), getCmd(), scanCmd(), watchCmd(), rmCmd(), ingestLagCmd(), partitionsCmd(), snapshotCmd(), operationCmd(), benchCmd(), kafkaCredentialsCmd())
	return root
}
