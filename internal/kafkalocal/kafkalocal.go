// Package kafkalocal runs a real single-node Apache Kafka broker (KRaft, broker and
// controller in one JVM) from Kafka's jars on Maven Central, for tests and
// benchmarks on a machine that has Java and Maven but no Kafka install.
//
//	b, err := kafkalocal.Start(ctx, kafkalocal.Config{Dir: t.TempDir(), Port: 19092})
//	defer b.Stop()
//	brokers := b.Addr // "127.0.0.1:19092"
package kafkalocal

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// KafkaVersion is the Apache Kafka release whose jars are fetched.
const KafkaVersion = "4.1.1"

//go:embed pom.xml
var pom []byte

// Config says where and how a broker runs.
type Config struct {
	// Dir holds the broker's log dirs, config and log file. Required.
	Dir string
	// Port is the client listener's port on 127.0.0.1. Default 19092.
	Port int
	// ControllerPort is the KRaft controller's port. Default Port+1.
	ControllerPort int
	// JarDir is where the jars are cached. Default CacheDir().
	JarDir string
	// Set overrides or adds broker properties (server.properties lines).
	Set map[string]string
	// Security, if set, adds listeners that require TLS or SASL.
	Security *Security
}

// Security adds listeners to a broker that require authentication or TLS.
// The PLAINTEXT listener on Port stays: the broker talks to itself through
// it, and its principal (ANONYMOUS) is a super user, so a test can use it to
// set things up (ACLs, records) whatever it grants others.
type Security struct {
	// SASLPort, if set, is a SASL_PLAINTEXT listener (Broker.SASLAddr)
	// offering PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER. OAUTHBEARER
	// takes Kafka's default validator of unsecured (unsigned) JWTs: for tests only.
	SASLPort int
	// TLSPort, if set, is an SSL listener (Broker.TLSAddr).
	TLSPort int
	// SASLTLSPort, if set, is a SASL_SSL listener (Broker.SASLTLSAddr): the
	// SASL mechanisms above over TLS.
	SASLTLSPort int
	// Users are SASL logins: each gets SCRAM-SHA-256 and SCRAM-SHA-512
	// credentials (created when the storage is formatted) and a PLAIN login.
	Users map[string]string
	// CertPEM (the broker's certificate, then its chain) and KeyPEM (its
	// unencrypted PKCS#8 private key) are the TLS listeners' identity.
	// Required with a TLS port.
	CertPEM, KeyPEM []byte
	// ClientCAPEM, if set, makes the TLS listeners require client
	// certificates it signed. A certificate's principal is its CN
	// (User:alice for CN=alice).
	ClientCAPEM []byte
	// Authorizer turns on Kafka's StandardAuthorizer: every principal but
	// ANONYMOUS (the PLAINTEXT and controller listeners) needs ACLs.
	Authorizer bool
}

// Broker is a running broker process.
type Broker struct {
	// Addr is host:port of the PLAINTEXT client listener.
	Addr string
	// SASLAddr, TLSAddr and SASLTLSAddr are the listeners Config.Security
	// asked for ("" if not).
	SASLAddr, TLSAddr, SASLTLSAddr string

	cmd  *exec.Cmd
	done chan error
	log  string
}

// CacheDir is where the jars live: $SLUICE_CACHE, else the user cache dir, under
// sluice/kafka-<version>.
func CacheDir() string {
	base := os.Getenv("SLUICE_CACHE")
	if base == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			d = os.TempDir()
		}
		base = filepath.Join(d, "sluice")
	}
	return filepath.Join(base, "kafka-"+KafkaVersion)
}

// FetchJars makes sure dir holds Kafka's runtime jars, fetching them with Maven
// the first time. A marker file records a complete fetch, so an interrupted one
// is redone.
func FetchJars(ctx context.Context, dir string) error {
	marker := filepath.Join(dir, ".complete")
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "kafkalocal-pom")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	pomPath := filepath.Join(tmp, "pom.xml")
	if err := os.WriteFile(pomPath, pom, 0o644); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "mvn", "-q", "-B", "-f", pomPath,
		"dependency:copy-dependencies", "-DincludeScope=runtime", "-DoutputDirectory="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("kafkalocal: fetching Kafka %s jars with maven: %w\n%s", KafkaVersion, err, out)
	}
	return os.WriteFile(marker, []byte(KafkaVersion+"\n"), 0o644)
}

// Start fetches the jars if needed, formats the storage and starts the broker,
// returning once an admin DescribeCluster succeeds (an open port is no proof).
func Start(ctx context.Context, cfg Config) (*Broker, error) {
	if cfg.Dir == "" {
		return nil, errors.New("kafkalocal: Config.Dir is required")
	}
	if cfg.Port == 0 {
		cfg.Port = 19092
	}
	if cfg.ControllerPort == 0 {
		cfg.ControllerPort = cfg.Port + 1
	}
	if cfg.JarDir == "" {
		cfg.JarDir = CacheDir()
	}
	if err := FetchJars(ctx, cfg.JarDir); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	set := cfg.Set
	var formatArgs []string
	if cfg.Security != nil {
		var secured map[string]string
		if secured, formatArgs, err = cfg.Security.properties(dir, cfg.Port, cfg.ControllerPort); err != nil {
			return nil, err
		}
		maps.Copy(secured, cfg.Set) // the caller's properties win
		set = secured
	}
	props := filepath.Join(dir, "server.properties")
	if err := os.WriteFile(props, []byte(serverProperties(dir, cfg.Port, cfg.ControllerPort, set)), 0o644); err != nil {
		return nil, err
	}
	log4j := filepath.Join(dir, "log4j2.properties")
	if err := os.WriteFile(log4j, []byte(log4jProperties), 0o644); err != nil {
		return nil, err
	}
	id, err := clusterID(filepath.Join(dir, "cluster.id"))
	if err != nil {
		return nil, err
	}
	classpath := filepath.Join(cfg.JarDir, "*")
	format := exec.CommandContext(ctx, "java", append([]string{"-cp", classpath, "kafka.tools.StorageTool",
		"format", "-t", id, "-c", props, "--ignore-formatted"}, formatArgs...)...)
	if out, err := format.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("kafkalocal: formatting storage: %w\n%s", err, out)
	}

	logPath := filepath.Join(dir, "broker.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	// G1 with the flags of Kafka's own start script (kafka-run-class.sh);
	// without them the JVM's pause goal is 200 ms, not 20.
	cmd := exec.Command("java", "-Xms256m", "-Xmx512m",
		"-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
		"-Dlog4j2.configurationFile="+log4j, "-Dkafka.logs.dir="+dir,
		"-cp", classpath, "kafka.Kafka", props)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, so a Ctrl-C of the test run does not race our Stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("kafkalocal: starting java: %w", err)
	}
	b := &Broker{Addr: fmt.Sprintf("127.0.0.1:%d", cfg.Port), cmd: cmd, done: make(chan error, 1), log: logPath}
	if sec := cfg.Security; sec != nil {
		b.SASLAddr, b.TLSAddr, b.SASLTLSAddr = hostPort(sec.SASLPort), hostPort(sec.TLSPort), hostPort(sec.SASLTLSPort)
	}
	go func() { b.done <- cmd.Wait(); logFile.Close() }()
	if err := b.waitReady(ctx, 90*time.Second); err != nil {
		b.Stop()
		return nil, err
	}
	return b, nil
}

func (b *Broker) waitReady(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for {
		select {
		case err := <-b.done:
			b.done <- err
			return fmt.Errorf("kafkalocal: broker exited before it was ready (%v); log: %s\n%s", err, b.log, tail(b.log))
		default:
		}
		attempt, cancelAttempt := context.WithTimeout(ctx, 2*time.Second)
		_, err := adm.BrokerMetadata(attempt)
		cancelAttempt()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafkalocal: broker not ready after %s: %v; log: %s\n%s", limit, err, b.log, tail(b.log))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Stop ends the broker (SIGTERM, then SIGKILL after 20 s) and waits for it.
func (b *Broker) Stop() {
	if b.cmd.Process == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-b.done:
		b.done <- err
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		err := <-b.done
		b.done <- err
	}
}

// clusterID reads the stored cluster id or makes one the way Kafka's
// Uuid.randomUuid does: 16 random bytes, URL-safe base64, not starting with '-'.
func clusterID(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	for {
		var raw [16]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return "", err
		}
		id := base64.RawURLEncoding.EncodeToString(raw[:])
		if !strings.HasPrefix(id, "-") {
			return id, os.WriteFile(path, []byte(id), 0o644)
		}
	}
}

func serverProperties(dir string, port, controllerPort int, set map[string]string) string {
	props := fmt.Sprintf(`process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:%[3]d
listeners=PLAINTEXT://127.0.0.1:%[2]d,CONTROLLER://127.0.0.1:%[3]d
advertised.listeners=PLAINTEXT://127.0.0.1:%[2]d
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=%[1]s/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=16777216
num.network.threads=2
num.io.threads=2
auto.create.topics.enable=false
add.partitions.to.txn.retry.backoff.ms=1
`, dir, port, controllerPort)
	// Later lines win: java.util.Properties keeps the last value of a key.
	for _, k := range slices.Sorted(maps.Keys(set)) {
		props += k + "=" + set[k] + "\n"
	}
	return props
}

const log4jProperties = `status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
`

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
