// Command sluice is the one binary: a node (serve) and a client (put, get, rm).
//
//	sluice serve                   # one node, embedded Kafka-protocol broker
//	sluice serve --brokers k:9092  # against a real Kafka cluster
//	sluice put KEY VALUE; sluice get KEY; sluice rm KEY
package main

import (
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

func main() { os.Exit(run()) }

// run runs the command line and returns the process's exit code (exit.go).
func run() int {
	root := rootCmd()
	root.SetArgs(negativeDelta(os.Args[1:]))
	cmd, err := root.ExecuteC()
	return report(os.Stderr, cmd, err)
}

// negativeDelta lets `sluice incr KEY -3` mean a delta of -3, as redis-cli's
// DECRBY would: the flag parser took -3 for flags -3. The number moves
// after a "--", where it is an argument.
func negativeDelta(args []string) []string {
	if len(args) < 3 || args[0] != "incr" || slices.Contains(args, "--") {
		return args
	}
	for i, a := range args[2:] {
		if _, err := strconv.ParseInt(a, 10, 64); err == nil && strings.HasPrefix(a, "-") && positional(args[1:i+2]) == 1 {
			rest := slices.Concat(args[:i+2], args[i+3:])
			return append(rest, "--", a)
		}
	}
	return args
}

// positional counts the arguments of args that are not flags or their
// values (every flag of incr takes a value).
func positional(args []string) int {
	n := 0
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case strings.HasPrefix(a, "-") && !strings.Contains(a, "="):
			i++ // its value
		case strings.HasPrefix(a, "-"):
		default:
			n++
		}
	}
	return n
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
