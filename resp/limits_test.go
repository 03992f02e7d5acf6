package resp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/node"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/resp"
)

// Bad input gets a clear error, the gRPC port's own message where the data
// plane checks it, and changes nothing; the connection goes on.
func TestBadInputGetsClearErrorAndChangesNothing(t *testing.T) {
	n := startNode(t, node.Config{})
	data := grpcData(t, n)
	ctx := context.Background()
	r := dialRaw(t, n.RESPAddr())
	if got := r.do("SET", "keep", "original"); got != "OK" {
		t.Fatal(got)
	}
	grpcMsg := func(err error) string {
		if err == nil {
			t.Fatal("the gRPC port took it")
		}
		return "ERR " + status.Convert(err).Message()
	}
	longKey := strings.Repeat("k", kv.MaxKeyBytes+1)
	bigValue := strings.Repeat("v", kv.MaxBatchBytes)
	_, getLong := data.Get(ctx, &sluicev1.GetRequest{Key: []byte(longKey)})
	_, setLong := data.Upsert(ctx, &sluicev1.UpsertRequest{Entries: []*sluicev1.Entry{{Key: []byte(longKey), Value: []byte("v")}}})
	_, setBig := data.Upsert(ctx, &sluicev1.UpsertRequest{Entries: []*sluicev1.Entry{{Key: []byte("keep"), Value: []byte(bigValue)}}})
	_, setEmpty := data.Upsert(ctx, &sluicev1.UpsertRequest{Entries: []*sluicev1.Entry{{Key: []byte(""), Value: []byte("v")}}})
	_, setZero := data.Upsert(ctx, &sluicev1.UpsertRequest{Entries: []*sluicev1.Entry{{Key: []byte("\x00k"), Value: []byte("v")}}})
	_, incrLong := data.Increment(ctx, &sluicev1.IncrementRequest{Key: []byte(longKey), Delta: 1})
	manyKeys := make([][]byte, 1001)
	manyArgs := []string{"MGET"}
	for i := range manyKeys {
		manyKeys[i] = fmt.Append(nil, "k", i)
		manyArgs = append(manyArgs, string(manyKeys[i]))
	}
	_, mgetMany := data.GetMany(ctx, &sluicev1.GetManyRequest{Keys: manyKeys})
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"GET", longKey}, grpcMsg(getLong)},
		{[]string{"SET", longKey, "v"}, grpcMsg(setLong)},
		{[]string{"SET", "keep", bigValue}, grpcMsg(setBig)}, // 1 MiB of value and 4 bytes of key
		{[]string{"SET", "", "v"}, grpcMsg(setEmpty)},
		{[]string{"SET", "\x00k", "v"}, grpcMsg(setZero)},
		{[]string{"INCR", longKey}, grpcMsg(incrLong)},
		{manyArgs, grpcMsg(mgetMany)},
		{[]string{"GET"}, "ERR wrong number of arguments for 'get' command"},
		{[]string{"GET", "a", "b"}, "ERR wrong number of arguments for 'get' command"},
		{[]string{"SET", "keep"}, "ERR wrong number of arguments for 'set' command"},
		{[]string{"INCRBY", "keep"}, "ERR wrong number of arguments for 'incrby' command"},
		{[]string{"INCRBY", "keep", "abc"}, "ERR value is not an integer or out of range"},
		{[]string{"INCRBY", "keep", "99999999999999999999"}, "ERR value is not an integer or out of range"},
		{[]string{"DECRBY", "keep", "-9223372036854775808"}, "ERR decrement would overflow"},
		{[]string{"SET", "keep", "x", "EX", "abc"}, "ERR value is not an integer or out of range"},
		{[]string{"SET", "keep", "x", "EX", "0"}, "ERR invalid expire time in 'set' command"},
		{[]string{"SET", "keep", "x", "PX", "-5"}, "ERR invalid expire time in 'set' command"},
		{[]string{"SET", "keep", "x", "EX"}, "ERR syntax error"},
		{[]string{"SET", "keep", "x", "EX", "1", "PX", "1000"}, "ERR syntax error"},
		{[]string{"SET", "keep", "x", "WHATEVER"}, "ERR syntax error"},
		{[]string{"SET", "keep", "x", "KEEPTTL"}, "ERR sluice does not serve SET's KEEPTTL option (it serves EX, PX, NX and XX)"},
		{[]string{"SCAN", "abc"}, "ERR invalid cursor"},
		// Integers as Redis reads them: no '+', no leading zero, no "-0".
		{[]string{"INCRBY", "keep", "+5"}, "ERR value is not an integer or out of range"},
		{[]string{"INCRBY", "keep", "012"}, "ERR value is not an integer or out of range"},
		{[]string{"DECRBY", "keep", "-0"}, "ERR value is not an integer or out of range"},
		{[]string{"SET", "keep", "x", "EX", "+5"}, "ERR value is not an integer or out of range"},
		{[]string{"SET", "keep", "x", "PX", "05000"}, "ERR value is not an integer or out of range"},
		{[]string{"SCAN", "+0"}, "ERR invalid cursor"},
		{[]string{"SCAN", "00"}, "ERR invalid cursor"},
		{[]string{"SCAN", "0", "COUNT", "+5"}, "ERR value is not an integer or out of range"},
		{[]string{"HELLO", "+3"}, "ERR Protocol version is not an integer or out of range"},
		{[]string{"SELECT", "00"}, "ERR value is not an integer or out of range"},
		{[]string{"SCAN", "0", "COUNT", "x"}, "ERR value is not an integer or out of range"},
		{[]string{"SCAN", "0", "MATCH"}, "ERR syntax error"},
		{[]string{"DEL", "keep", longKey}, "ERR key 1: invalid argument: key of 4097 bytes is over the limit of 4096 bytes"},
		{[]string{"EXISTS", "keep", ""}, "ERR key 1: invalid argument: empty key"},
		{[]string{"INCR", "keep"}, `ERR value is not an integer or out of range (partition: cannot increment "keep": its value "original" is not a decimal int64)`},
	} {
		got := r.do(c.args...)
		if got != respError(c.want) {
			t.Errorf("%.40q: %.300v\nwant %.300s", c.args, got, c.want)
		}
	}
	if got := r.do("PING"); got != "PONG" {
		t.Fatalf("the connection after bad input: %v", got)
	}
	if got := r.do("GET", "keep"); got != "original" {
		t.Fatalf("bad input changed a key: %v", got)
	}
	if got := r.do("EXISTS", "k1", "k1000"); got != int64(0) {
		t.Fatalf("bad input wrote keys: %v", got)
	}
}

// A command that cannot fit in the limits is refused at its header, before
// its bytes arrive (the node does not buffer them): a protocol error, and
// the connection is closed, as Redis does past proto-max-bulk-len.
func TestOversizedInputIsRefusedAtItsHeader(t *testing.T) {
	n := startNode(t, node.Config{})
	for _, c := range []struct {
		name  string
		bytes string
		want  string
	}{
		{"a 16 MiB bulk string", "*3\r\n$3\r\nSET\r\n$4\r\nhuge\r\n$16777216\r\nxxxxxxxx", "a bulk string of 16777216 bytes is over sluice's limit"},
		{"a value just over the command limit", fmt.Sprintf("*3\r\n$3\r\nSET\r\n$4\r\nhuge\r\n$%d\r\n", resp.MaxCommandBytes), "is over sluice's limit"},
		{"a hundred million arguments", "*100000000\r\n$3\r\nGET\r\n", "a command of 100000000 arguments cannot fit"},
		{"an inline command of 70 KiB", "SET huge " + strings.Repeat("v", 70<<10), "too big inline request"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := dialRaw(t, n.RESPAddr())
			// Complete commands before it are answered first.
			r.send(append(command("SET", "before", "1"), c.bytes...))
			if got := r.reply(); got != "OK" {
				t.Fatalf("the command before: %v", got)
			}
			got, ok := r.reply().(respError)
			if !ok || !strings.HasPrefix(string(got), "ERR Protocol error: ") || !strings.Contains(string(got), c.want) {
				t.Fatalf("got %v, want a protocol error saying %q", got, c.want)
			}
			if _, err := r.r.ReadByte(); err == nil {
				t.Fatal("the connection is still open")
			}
			if got := dialRaw(t, n.RESPAddr()).do("EXISTS", "huge"); got != int64(0) {
				t.Fatalf("a refused command wrote: %v", got)
			}
		})
	}
}

// A client that pipelines reads without reading the answers blocks its own
// connection: the node writes as it goes and holds little more than one
// value for it, not the answers of every command it has read. Thousands of
// GETs are read at once (a batch of them); values of 256 KiB are written
// from where they were read, values of 16 KiB through the connection's
// buffer.
func TestASlowReaderDoesNotGrowTheNode(t *testing.T) {
	n := startNode(t, node.Config{})
	for _, size := range []int{256 << 10, 16 << 10} {
		t.Run(fmt.Sprint(size>>10, "KiB"), func(t *testing.T) {
			ctx := context.Background()
			value := strings.Repeat("v", size)
			if err := newClient(t, n).Set(ctx, "big", value, 0).Err(); err != nil {
				t.Fatal(err)
			}
			r := dialRaw(t, n.RESPAddr())
			gets := (256 << 20) / size // 256 MiB of answers
			cmds := command("SET", "filler", strings.Repeat("f", kv.MaxBatchBytes-16))
			for range gets {
				cmds = append(cmds, command("GET", "big")...)
			}
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			go r.c.Write(cmds) // the node reads all of it before it blocks, or the test fails below
			waitUnread(t, r)
			last := queued(t, r)
			runtime.GC()
			var during runtime.MemStats
			runtime.ReadMemStats(&during)
			grew := int64(during.HeapAlloc) - int64(before.HeapAlloc)
			t.Logf("%d answers of %d KiB: %d KiB queued to the client unread; the heap grew by %d KiB", gets, size>>10, last>>10, grew>>10)
			if grew > 24<<20 {
				t.Fatalf("the heap grew by %d MiB while the client did not read: the node holds its answers", grew>>20)
			}
			if got := r.reply(); got != "OK" {
				t.Fatalf("the SET: %v", got)
			}
			for i := range gets {
				if got := r.reply(); got != value {
					t.Fatalf("answer %d: %.20q…", i, got)
				}
			}
			if got := r.do("PING"); got != "PONG" {
				t.Fatal(got)
			}
		})
	}
}

// With a data token, a connection must AUTH (or HELLO AUTH) with it first;
// everything but AUTH, HELLO and QUIT gets NOAUTH, as Redis answers.
func TestAuthWithTheDataToken(t *testing.T) {
	n := startNode(t, node.Config{DataToken: "s3cret"})
	ctx := context.Background()
	r := dialRaw(t, n.RESPAddr())
	for _, c := range []struct {
		args []string
		want any
	}{
		{[]string{"GET", "k"}, respError("NOAUTH Authentication required.")},
		{[]string{"SET", "k", "v"}, respError("NOAUTH Authentication required.")},
		{[]string{"PING"}, respError("NOAUTH Authentication required.")},
		{[]string{"SLUICE.CONSISTENCY", "eventual"}, respError("NOAUTH Authentication required.")},
		{[]string{"HELLO", "3"}, respError("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")},
		{[]string{"AUTH", "wrong"}, respError("WRONGPASS invalid username-password pair or user is disabled.")},
		{[]string{"AUTH", "default", "wrong"}, respError("WRONGPASS invalid username-password pair or user is disabled.")},
		{[]string{"AUTH", "admin", "s3cret"}, respError("WRONGPASS invalid username-password pair or user is disabled.")},
		{[]string{"GET", "k"}, respError("NOAUTH Authentication required.")},
		{[]string{"AUTH", "s3cret"}, "OK"},
		{[]string{"SET", "k", "v"}, "OK"},
		{[]string{"GET", "k"}, "v"},
	} {
		if got := r.do(c.args...); got != c.want {
			t.Fatalf("%q: %v, want %v", c.args, got, c.want)
		}
	}
	if got := dialRaw(t, n.RESPAddr()).do("HELLO", "3", "AUTH", "default", "s3cret"); got.([]any)[5] != int64(3) {
		t.Fatalf("HELLO 3 AUTH: %v", got)
	}
	// go-redis: HELLO with AUTH.
	if got, err := newClient(t, n, func(o *redis.Options) { o.Password = "s3cret" }).Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("go-redis with the token: %q %v", got, err)
	}
	if err := newClient(t, n, func(o *redis.Options) { o.Password = "nope" }).Get(ctx, "k").Err(); !strings.Contains(fmt.Sprint(err), "WRONGPASS") {
		t.Fatalf("go-redis with a wrong token: %v", err)
	}
	if err := newClient(t, n).Get(ctx, "k").Err(); !strings.Contains(fmt.Sprint(err), "NOAUTH") {
		t.Fatalf("go-redis without the token: %v", err)
	}
	// A node without a token: AUTH says so, as Redis does.
	open := startNode(t, node.Config{})
	if got, ok := dialRaw(t, open.RESPAddr()).do("AUTH", "x").(respError); !ok || !strings.Contains(string(got), "without any password configured") {
		t.Fatalf("AUTH on a node without a token: %v", got)
	}
}

// With --tls-cert the RESP port is TLS too: TLS clients work, plaintext
// ones get no answer.
func TestTLS(t *testing.T) {
	serverTLS, clientTLS := testPKI(t)
	n := startNode(t, node.Config{DataTLS: serverTLS, ControlTLS: serverTLS, PeerTLS: clientTLS})
	ctx := context.Background()
	rdb := newClient(t, n, func(o *redis.Options) { o.TLSConfig = clientTLS })
	if err := rdb.Set(ctx, "k", "over tls", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := rdb.Get(ctx, "k").Result(); err != nil || got != "over tls" {
		t.Fatalf("GET over TLS: %q %v", got, err)
	}
	c, err := net.Dial("tcp", n.RESPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(command("PING"))
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 64)
	k, _ := c.Read(buf)
	if strings.Contains(string(buf[:k]), "PONG") {
		t.Fatal("a plaintext client was answered on a TLS port")
	}
}

// testPKI makes a CA and a certificate it signs for 127.0.0.1: the node's
// server config and a client config that trusts it.
func testPKI(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "node"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

// The outside tester's wedge: a pipeline of GETs of absent keys, sent
// before any reply is read. Each GET took a 1 MiB share of the node's read
// memory and gave it back only at the pipeline's next flush (64 KiB of
// replies: thousands of short ones), so the shares of one pipeline filled
// the node's read memory: its own GETs, and every other client's reads,
// gRPC's too, waited and failed for good. Now an absent key gives its share
// back at once: every GET is answered, and a gRPC read beside it too.
func TestAPipelineOfAbsentKeysDoesNotFillTheReadMemory(t *testing.T) {
	n := startNode(t, node.Config{ReadMemory: 64 << 20})
	r := dialRaw(t, n.RESPAddr())
	const gets = 3000
	var b []byte
	for i := range gets {
		b = append(b, command("GET", fmt.Sprint("absent-", i%50))...)
	}
	r.send(b)
	for i := range gets {
		if got := r.reply(); got != nil {
			t.Fatalf("GET %d of an absent key: %v, want nil", i, got)
		}
	}
	dc := grpcData(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := dc.Get(ctx, &sluicev1.GetRequest{Key: []byte("absent-0")}); err != nil {
		t.Fatalf("a gRPC Get after the pipeline: %v", err)
	}
}
