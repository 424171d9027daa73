package resource

import (
	"context"
	"testing"
)

// BenchmarkVerify measures Verify with the key cached: one header and claims
// decode, one map lookup and one signature check.
func BenchmarkVerify(b *testing.B) {
	for _, alg := range []string{"ES256", "RS256"} {
		clock := newTestClock()
		key := newES256Key(b)
		if alg == "RS256" {
			key = newRS256Key(b)
		}
		iss := newFakeIssuer(b, key)
		v := iss.verifier(b, clock)
		token := key.sign(b, iss.claims(clock), nil)
		if err := v.Refresh(context.Background()); err != nil {
			b.Fatalf("refresh: %v", err)
		}
		ctx := context.Background()

		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, token); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := v.Verify(ctx, token); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
