package pagetoken

import (
	"bytes"
	"errors"
	"testing"
)

func TestRoundTripAndTampering(t *testing.T) {
	tok := Token{Cluster: "sluice/abc", Range: RangeOf([]byte("user:"), nil, nil), After: []byte("user:42")}
	b := Encode(tok)
	got, err := Decode(b)
	if err != nil || got.Cluster != tok.Cluster || got.Range != tok.Range || !bytes.Equal(got.After, tok.After) {
		t.Fatalf("Decode(Encode) = %+v, %v", got, err)
	}
	for i := range b {
		forged := bytes.Clone(b)
		forged[i] ^= 0x20
		if _, err := Decode(forged); !errors.Is(err, ErrMalformed) {
			t.Fatalf("a token with byte %d changed decodes: %v", i, err)
		}
	}
	for _, b := range [][]byte{nil, []byte("hello"), b[:len(b)-1], append(bytes.Clone(b), 0)} {
		if _, err := Decode(b); !errors.Is(err, ErrMalformed) {
			t.Fatalf("Decode(%q) = %v", b, err)
		}
	}
	if RangeOf([]byte("ab"), nil, nil) == RangeOf([]byte("a"), []byte("b"), nil) {
		t.Fatal("a prefix and a range digest alike")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(Token{Cluster: "c", After: []byte("k")}))
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, err := Decode(b)
		if err == nil && !bytes.Equal(Encode(tok), b) {
			t.Fatalf("%x decodes to %+v, which encodes differently", b, tok)
		}
	})
}
