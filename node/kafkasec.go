package node

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluicedb/sluice/kafkasec"
)

// The node's own checks of its Kafka security settings (kafkasec.Security):
// what the embedded broker cannot take, and the errors of a first contact
// with Kafka told in terms of the setting that caused them.

// checkKafka refuses TLS and SASL settings without brokers (the embedded
// broker takes neither), and what s.Check refuses.
func checkKafka(s kafkasec.Security, hasBrokers bool) error {
	if !hasBrokers && (s.TLS != nil || s.SASL != nil) {
		return errors.New("node: Kafka TLS and SASL settings need brokers (--brokers): the embedded broker takes neither")
	}
	return s.Check()
}

// explainKafka turns the errors of a first contact with Kafka that a setting
// of s causes into ones that name the setting.
func explainKafka(s kafkasec.Security, brokers []string, err error) error {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		verify    *tls.CertificateVerificationError
		notTLS    tls.RecordHeaderError
	)
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return fmt.Errorf("node: Kafka at %s refused sluice's SASL credentials (%s): check the user and password or token: %w", strings.Join(brokers, ","), s, err)
	case errors.Is(err, kerr.UnsupportedSaslMechanism), errors.Is(err, kerr.IllegalSaslState):
		return fmt.Errorf("node: Kafka at %s does not offer the SASL mechanism sluice uses (%s) on this listener: %w", strings.Join(brokers, ","), s, err)
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &verify):
		return fmt.Errorf("node: the TLS certificate of Kafka at %s is not trusted (set the Kafka TLS CA, or the server name it was issued for): %w", strings.Join(brokers, ","), err)
	case errors.As(err, &notTLS):
		return fmt.Errorf("node: Kafka at %s did not answer TLS: is that listener plaintext?: %w", strings.Join(brokers, ","), err)
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed),
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed), errors.Is(err, kerr.GroupAuthorizationFailed):
		return fmt.Errorf("node: Kafka at %s denied sluice an operation: grant its principal the ACLs in the README (\"Kafka ACLs\"): %w", strings.Join(brokers, ","), err)
	}
	return err
}
