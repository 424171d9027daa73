package authz

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParsePHC checks that parsePHC never panics on hostile input and that
// anything it accepts re-encodes canonically: String of the parsed value is
// the input itself and parses back to the same value.
func FuzzParsePHC(f *testing.F) {
	salt16 := phc{memory: 19456, iterations: 2, parallelism: 1,
		salt: bytes.Repeat([]byte{0xa5}, 16), key: bytes.Repeat([]byte{0x3c}, 32)}.String()
	seeds := []string{
		salt16,
		phc{memory: 8, iterations: 1, parallelism: 1, salt: make([]byte, 8), key: make([]byte, 8)}.String(),
		phc{memory: maxMemory, iterations: maxIterations, parallelism: 255,
			salt: make([]byte, 64), key: make([]byte, 64)}.String(),
		"",
		"$",
		"$argon2id$",
		"$argon2id$v=19$m=19456,t=2,p=1$",
		"$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=16$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=4294967295,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=19456,t=2,p=0$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=019456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAB$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAA\nAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2i$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		strings.Replace(salt16, "m=19456,t=2,p=1", "t=2,m=19456,p=1", 1),
		"$2a$04$abcdefghijklmnopqrstuuVYxG8Ayl8p5Gp4n6gwUS3ZBiiNK7Jx2",
		salt16 + strings.Repeat("A", maxPHCLen),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parsePHC(s)
		if err != nil {
			return
		}
		enc := v.String()
		if enc != s {
			t.Errorf("String(parsePHC(%q)) = %q, want the input", s, enc)
		}
		got, err := parsePHC(enc)
		if err != nil {
			t.Fatalf("parsePHC(%q) error = %v for a re-encoded value", enc, err)
		}
		if !phcEqual(got, v) {
			t.Errorf("parsePHC(%q) = %+v, want %+v", enc, got, v)
		}
	})
}
