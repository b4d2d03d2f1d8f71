package auth

import (
	"fmt"
	"testing"
)

func BenchmarkVerify(b *testing.B) {
	k := keys(b)
	payload := fmt.Sprintf(`{"sub":"user-123456","exp":%d,"join":["room:*","user:123456"],"publish":["room:*"]}`, testNow.Unix()+3600)
	cases := []struct {
		alg string
		key any
		cfg Config
	}{
		{"HS256", testSecret, Config{Secret: testSecret}},
		{"HS512", testSecret, Config{Secret: testSecret}},
		{"RS256", k.rsa, Config{PublicKey: &k.rsa.PublicKey}},
		{"ES256", k.ec, Config{PublicKey: &k.ec.PublicKey}},
	}
	for _, c := range cases {
		b.Run(c.alg, func(b *testing.B) {
			v := newVerifier(b, c.cfg)
			token := signRaw(b, c.alg, c.key, hdr(c.alg), payload)
			b.ReportAllocs()
			b.SetBytes(int64(len(token)))
			for b.Loop() {
				if _, err := v.Verify(token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("garbage", func(b *testing.B) {
		v := newVerifier(b, Config{Secret: testSecret})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify("not a token"); err == nil {
				b.Fatal("garbage verified")
			}
		}
	})
	b.Run("bad-signature-HS256", func(b *testing.B) {
		v := newVerifier(b, Config{Secret: testSecret})
		token := signRaw(b, "HS256", []byte("wrong"), hdr("HS256"), payload)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(token); err == nil {
				b.Fatal("bad token verified")
			}
		}
	})
}

func BenchmarkCanJoin(b *testing.B) {
	c := &Claims{Join: []string{"user:123456", "team:abc:*", "room:*"}}
	b.ReportAllocs()
	for b.Loop() {
		if !c.CanJoin("room:general") {
			b.Fatal("CanJoin false")
		}
	}
}
