package kafkalocal

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// properties are the broker properties of s's listeners, with the PLAINTEXT
// listener on port kept, and the StorageTool format arguments that create
// the SCRAM credentials.
func (s *Security) properties(dir string, port, controllerPort int) (map[string]string, []string, error) {
	type listener struct {
		name, protocol string
		port           int
		sasl, tls      bool
	}
	all := []listener{
		{"SASL", "SASL_PLAINTEXT", s.SASLPort, true, false},
		{"TLS", "SSL", s.TLSPort, false, true},
		{"SASLTLS", "SASL_SSL", s.SASLTLSPort, true, true},
	}
	var ls []listener
	for _, l := range all {
		if l.port != 0 {
			ls = append(ls, l)
		}
	}
	if len(ls) == 0 {
		return nil, nil, errors.New("kafkalocal: Security names no port")
	}
	props := map[string]string{}
	listeners := []string{fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", port)}
	protocols := []string{"CONTROLLER:PLAINTEXT", "PLAINTEXT:PLAINTEXT"}
	for _, l := range ls {
		listeners = append(listeners, fmt.Sprintf("%s://127.0.0.1:%d", l.name, l.port))
		protocols = append(protocols, l.name+":"+l.protocol)
		prefix := "listener.name." + strings.ToLower(l.name) + "."
		if l.sasl {
			props[prefix+"sasl.enabled.mechanisms"] = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER"
			props[prefix+"plain.sasl.jaas.config"] = plainJAAS(s.Users)
			props[prefix+"scram-sha-256.sasl.jaas.config"] = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
			props[prefix+"scram-sha-512.sasl.jaas.config"] = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
			props[prefix+"oauthbearer.sasl.jaas.config"] = `org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="broker";`
		}
		if l.tls {
			if len(s.CertPEM) == 0 || len(s.KeyPEM) == 0 {
				return nil, nil, errors.New("kafkalocal: a TLS listener needs Security.CertPEM and KeyPEM")
			}
			// A PEM keystore file holds the private key, then the chain.
			keystore := filepath.Join(dir, "keystore.pem")
			if err := os.WriteFile(keystore, append(append([]byte{}, s.KeyPEM...), s.CertPEM...), 0o600); err != nil {
				return nil, nil, err
			}
			props[prefix+"ssl.keystore.type"] = "PEM"
			props[prefix+"ssl.keystore.location"] = keystore
			if len(s.ClientCAPEM) > 0 && !l.sasl {
				truststore := filepath.Join(dir, "truststore.pem")
				if err := os.WriteFile(truststore, s.ClientCAPEM, 0o600); err != nil {
					return nil, nil, err
				}
				props[prefix+"ssl.truststore.type"] = "PEM"
				props[prefix+"ssl.truststore.location"] = truststore
				props[prefix+"ssl.client.auth"] = "required"
				props[prefix+"ssl.principal.mapping.rules"] = "RULE:^CN=([^,]+).*$/$1/,DEFAULT"
			}
		}
	}
	// Later lines of server.properties win: these replace the defaults.
	props["advertised.listeners"] = strings.Join(listeners, ",") // all on 127.0.0.1 already
	props["listeners"] = strings.Join(listeners, ",") + fmt.Sprintf(",CONTROLLER://127.0.0.1:%d", controllerPort)
	props["listener.security.protocol.map"] = strings.Join(protocols, ",")
	if s.Authorizer {
		props["authorizer.class.name"] = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
		props["super.users"] = "User:ANONYMOUS"
	}
	var format []string
	for _, user := range slices.Sorted(maps.Keys(s.Users)) {
		for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-512"} {
			format = append(format, "--add-scram", fmt.Sprintf("%s=[name=%s,password=%s]", mech, user, s.Users[user]))
		}
	}
	return props, format, nil
}

func plainJAAS(users map[string]string) string {
	var b strings.Builder
	b.WriteString("org.apache.kafka.common.security.plain.PlainLoginModule required")
	for _, u := range slices.Sorted(maps.Keys(users)) {
		b.WriteString(" user_" + u + "=" + strconv.Quote(users[u]))
	}
	return b.String() + ";"
}

func hostPort(port int) string {
	if port == 0 {
		return ""
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}
