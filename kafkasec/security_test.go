package kafkasec

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Said on purpose (--kafka-sasl-allow-plaintext), or over TLS, or with
// SCRAM, SASL passes the check.
func TestKafkaSASLInTheClearWhenAllowed(t *testing.T) {
	refused := []Security{
		{SASL: plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism()},
		{SASL: oauth.Auth{Token: unsecuredJWT("alice")}.AsMechanism()},
	}
	for _, sec := range []Security{
		{SASL: refused[0].SASL, AllowPlaintextSASL: true},
		{SASL: refused[1].SASL, AllowPlaintextSASL: true},
		{SASL: refused[0].SASL, TLS: &tls.Config{}},
		{SASL: scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism()},
	} {
		if err := sec.Check(); err != nil {
			t.Errorf("%s: %v", sec, err)
		}
	}
}

// Without TLS, SASL PLAIN and OAUTHBEARER send the password or token in the
// clear: Check refuses them, naming both ways out.
func TestKafkaSASLInTheClearFailsTheCheck(t *testing.T) {
	for _, sec := range []Security{
		{SASL: plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism()},
		{SASL: oauth.Auth{Token: unsecuredJWT("alice")}.AsMechanism()},
	} {
		err := sec.Check()
		for _, want := range []string{"in the clear", "--kafka-tls", "--kafka-sasl-allow-plaintext"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("%s: Check() = %v; want an error containing %q", sec, err, want)
			}
		}
	}
}

// unsecuredJWT is a token Kafka's default OAUTHBEARER validator accepts: an
// unsigned JWT naming the principal in "sub" (for tests only).
func unsecuredJWT(sub string) string {
	enc := base64.RawURLEncoding.EncodeToString
	now := time.Now().Unix()
	return enc([]byte(`{"alg":"none"}`)) + "." + enc(fmt.Appendf(nil, `{"sub":%q,"iat":%d,"exp":%d}`, sub, now, now+3600)) + "."
}
