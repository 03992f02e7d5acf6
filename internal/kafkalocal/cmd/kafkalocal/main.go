// Command kafkalocal runs a command beside a fresh single-node Apache Kafka broker:
//
//	go run ./internal/kafkalocal/cmd/kafkalocal -- go test ./...
//
// It fetches Kafka's jars once (cached), starts the broker on 127.0.0.1, exports
// KAFKA_BROKERS to the command, stops the broker afterwards and exits with the
// command's status. If KAFKA_BROKERS is already set it only runs the command.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"github.com/sluicedb/sluice/internal/kafkalocal"
)

func main() {
	port := flag.Int("port", 19092, "client port of the broker on 127.0.0.1")
	keep := flag.Bool("keep", false, "keep the broker's directory afterwards")
	set := map[string]string{}
	flag.Func("set", "broker property `key=value` (repeatable), e.g. -set add.partitions.to.txn.retry.backoff.ms=20", func(kv string) error {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("want key=value, got %q", kv)
		}
		set[k] = v
		return nil
	})
	flag.Parse()
	args := flag.Args()
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: kafkalocal [-port N] [-set key=value]... -- command [args...]")
		os.Exit(2)
	}
	os.Exit(run(*port, *keep, set, args))
}

func run(port int, keep bool, set map[string]string, args []string) int {
	if os.Getenv("KAFKA_BROKERS") == "" {
		dir, err := os.MkdirTemp("", "kafkalocal")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if !keep {
			defer os.RemoveAll(dir)
		}
		fmt.Fprintf(os.Stderr, "kafkalocal: starting Apache Kafka %s on 127.0.0.1:%d (dir %s)\n", kafkalocal.KafkaVersion, port, dir)
		b, err := kafkalocal.Start(context.Background(), kafkalocal.Config{Dir: dir, Port: port, Set: set})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer func() {
			b.Stop()
			fmt.Fprintln(os.Stderr, "kafkalocal: broker stopped")
		}()
		os.Setenv("KAFKA_BROKERS", b.Addr)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Forward Ctrl-C and SIGTERM to the command; the broker stops after it exits.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	err := cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
