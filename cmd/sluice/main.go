// Command sluice is the one binary: a node (serve) and a client (put, get, rm).
//
//	sluice serve                   # one node, embedded Kafka-protocol broker
//	sluice serve --brokers k:9092  # against a real Kafka cluster
//	sluice put KEY VALUE; sluice get KEY; sluice rm KEY
package main

import (
	"os"

	"github.com/spf13/cobra"
)

func main() { os.Exit(run()) }

// run runs the command line and returns the process's exit code (exit.go).
func run() int {
	root := rootCmd()
	cmd, err := root.ExecuteC()
	return report(os.Stderr, cmd, err)
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "sluice",
		Short:         "sluice is a partitioned key-value service whose write-ahead log is Kafka",
		Long:          "sluice is a partitioned key-value service whose write-ahead log is Kafka.\n\n" + exitCodesHelp,
		Version:       version(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("sluice {{.Version}}\n")
	root.AddCommand(serveCmd(), putCmd(), getCmd(), incrCmd(), scanCmd(), watchCmd(), rmCmd(), ingestLagCmd(), partitionsCmd(), clusterCmd(), snapshotCmd(), operationCmd(), benchCmd(), versionCmd(), kafkaCredentialsCmd())
	markUsageErrors(root)
	return root
}
