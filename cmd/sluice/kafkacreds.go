package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sluicedb/sluice/node"
)

// kafkaCredentialsCmd prints the embedded broker's SASL credentials as a
// kcat/librdkafka properties file: a collector's by default (it may write
// the ingest topic, nothing else), the node's own with --admin. Whoever can
// read the data directory can run it; nobody else gets in.
func kafkaCredentialsCmd() *cobra.Command {
	var (
		def   = node.DefaultConfig()
		dir   = def.DataDir
		addr  = def.EmbeddedKafkaAddr
		admin bool
	)
	cmd := &cobra.Command{
		Use:   "kafka-credentials",
		Short: "Print the embedded broker's credentials for a collector (kcat -F FILE), made in the data directory if missing",
		Example: "  sluice kafka-credentials > collector.properties\n" +
			"  kcat -F collector.properties -t sluice.ingest -P -K '\\t' <<< $'user:1\\tAda'",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if v := os.Getenv(envName("data-dir")); v != "" && !cmd.Flags().Changed("data-dir") {
				dir = v
			}
			if !cmd.Flags().Changed("embedded-kafka-addr") {
				if v := os.Getenv(envName("embedded-kafka-addr")); v != "" {
					addr = v
				} else if b, err := os.ReadFile(filepath.Join(dir, node.EmbeddedAddrFile)); err == nil {
					addr = strings.TrimSpace(string(b)) // where the node last listened
				}
			}
			c, err := node.EmbeddedCredentialsIn(dir)
			if err != nil {
				return fmt.Errorf("embedded broker credentials in %s: %w", dir, err)
			}
			out := c.Collector(addr)
			if admin {
				out = c.Admin(addr)
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), out)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "data-dir", dir, "the node's data directory (where kafka.credentials is kept; $SLUICE_DATA_DIR)")
	f.StringVar(&addr, "embedded-kafka-addr", addr, "the embedded broker's address (default: $SLUICE_EMBEDDED_KAFKA_ADDR, else the one the node in --data-dir last listened on)")
	f.BoolVar(&admin, "admin", false, "print the node's own credentials (a superuser of the broker) instead of a collector's")
	return cmd
}
