// Package pagetoken encodes the page token of a Scan: where to resume (after
// a key), for which prefix or range, in which cluster. Nodes check it and
// the Go client makes it (it merges the nodes' streams, so the key a page
// ends at is its own choice).
//
//	tok := pagetoken.Encode(pagetoken.Token{Cluster: id, Range: pagetoken.RangeOf(prefix, start, end), After: last})
//	t, err := pagetoken.Decode(tok) // err wraps ErrMalformed
//
// A token is checked, not secret: it only names a key to resume after,
// which any caller may name anyway as a range's start. Its checksum catches a
// token damaged or made up; its cluster and range catch one reused with
// another cluster or another scan.
package pagetoken

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrMalformed wraps every error of Decode.
var ErrMalformed = errors.New("pagetoken: malformed")

const (
	version  = 1
	sumBytes = 8
	maxKey   = 4096
)

// Token is a decoded page token.
type Token struct {
	// Cluster is the identity of the cluster that the scan read.
	Cluster string
	// Range is RangeOf the scan's prefix, start and end.
	Range [8]byte
	// After is the last key delivered: the scan resumes after it.
	After []byte
}

// RangeOf digests what a scan covers, so a token is not reused for another.
func RangeOf(prefix, start, end []byte) [8]byte {
	h := sha256.New()
	for _, b := range [][]byte{prefix, start, end} {
		h.Write(binary.AppendUvarint(nil, uint64(len(b))))
		h.Write(b)
	}
	var r [8]byte
	copy(r[:], h.Sum(nil))
	return r
}

// Encode lays t out: version, cluster, range, key, then a checksum of it all.
func Encode(t Token) []byte {
	b := []byte{version}
	b = binary.AppendUvarint(b, uint64(len(t.Cluster)))
	b = append(b, t.Cluster...)
	b = append(b, t.Range[:]...)
	b = binary.AppendUvarint(b, uint64(len(t.After)))
	b = append(b, t.After...)
	return append(b, sum(b)...)
}

// Decode reads a token back and verifies its checksum.
func Decode(b []byte) (Token, error) {
	bad := func(why string) (Token, error) { return Token{}, fmt.Errorf("%w: %s", ErrMalformed, why) }
	if len(b) < 1+sumBytes {
		return bad("too short")
	}
	body, s := b[:len(b)-sumBytes], b[len(b)-sumBytes:]
	if !bytes.Equal(sum(body), s) {
		return bad("checksum does not match (damaged, or not made by sluice)")
	}
	if body[0] != version {
		return bad(fmt.Sprintf("unknown version %d", body[0]))
	}
	rest := body[1:]
	field := func(limit uint64) ([]byte, bool) {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > limit || n > uint64(len(rest)-k) {
			return nil, false
		}
		f := rest[k : k+int(n)]
		rest = rest[k+int(n):]
		return f, true
	}
	var t Token
	cluster, ok := field(1024)
	if !ok {
		return bad("bad cluster")
	}
	t.Cluster = string(cluster)
	if len(rest) < len(t.Range) {
		return bad("truncated")
	}
	copy(t.Range[:], rest)
	rest = rest[len(t.Range):]
	after, ok := field(maxKey)
	if !ok || len(after) == 0 || len(rest) != 0 {
		return bad("bad key")
	}
	t.After = bytes.Clone(after)
	return t, nil
}

func sum(b []byte) []byte {
	h := sha256.New()
	h.Write([]byte("sluice scan page token\x00"))
	h.Write(b)
	return h.Sum(nil)[:sumBytes]
}
