// Package integration tests sluice as its users run it: `sluice serve`
// processes (built with -race) against a real Apache Kafka broker, killed with
// SIGKILL, paused with SIGSTOP, three at a time as a cluster, fed by Debian's
// kcat. Run by ./scripts/test.sh with the rest of the suite.
package integration
