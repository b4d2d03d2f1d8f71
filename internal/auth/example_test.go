package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/roomcast/roomcast/internal/auth"
)

func Example() {
	secret := []byte("a-long-random-secret")
	v, err := auth.New(auth.Config{Secret: secret, Leeway: 5 * time.Second})
	if err != nil {
		panic(err)
	}

	// A backend mints the token; the client sends it as auth.token.
	token, err := auth.Sign("HS256", secret, map[string]any{
		"sub":     "user-42",
		"exp":     time.Now().Add(time.Hour).Unix(),
		"join":    []string{"room:*", "user:42"},
		"publish": "room:general",
	})
	if err != nil {
		panic(err)
	}

	claims, err := v.Verify(token)
	if err != nil {
		fmt.Println("refused:", err) // fit to send back in CONNECT_ERROR
		return
	}
	fmt.Println(claims.Subject)
	fmt.Println(claims.CanJoin("room:lobby"), claims.CanJoin("user:43"))
	fmt.Println(claims.CanPublish("room:general"), claims.CanPublish("room:lobby"))

	_, err = v.Verify(token + "x")
	fmt.Println(errors.Is(err, auth.ErrSignature), err)
	// Output:
	// user-42
	// true false
	// true false
	// true auth: invalid signature
}

func ExampleMatch() {
	fmt.Println(auth.Match("room:*", "room:general"))
	fmt.Println(auth.Match("room:*", "room:a/b:c"))
	fmt.Println(auth.Match("team:?", "team:é"))
	fmt.Println(auth.Match("org:*:admin", "org:acme:users"))
	// Output:
	// true
	// true
	// true
	// false
}

// ExampleKeySet verifies tokens against keys an identity provider publishes
// as a JWK Set; here the provider is a test server.
func ExampleKeySet() {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	point, _ := priv.PublicKey.Bytes() // 0x04 || X || Y
	enc := base64.RawURLEncoding
	jwks := fmt.Sprintf(`{"keys":[{"kty":"EC","crv":"P-256","use":"sig","alg":"ES256","kid":"2024-06","x":%q,"y":%q}]}`,
		enc.EncodeToString(point[1:33]), enc.EncodeToString(point[33:]))
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		fmt.Fprint(w, jwks)
	}))
	defer idp.Close()

	keys, err := auth.NewKeySet(auth.KeySetConfig{
		URL:     idp.URL + "/.well-known/jwks.json",
		OnError: func(err error) { fmt.Println("jwks:", err) }, // log and count
	})
	if err != nil {
		panic(err)
	}
	defer keys.Close()
	if err := keys.Refresh(context.Background()); err != nil { // fail fast at startup
		panic(err)
	}
	keys.Start() // refresh every 5 minutes until Close

	v, err := auth.New(auth.Config{KeySet: keys, Audience: "roomcast"})
	if err != nil {
		panic(err)
	}
	token, err := auth.Sign("ES256", priv, map[string]any{"sub": "user-42", "aud": "roomcast", "dm": "support-*"})
	if err != nil {
		panic(err)
	}
	claims, err := v.Verify(token)
	if err != nil {
		panic(err)
	}
	fmt.Println(claims.Subject, claims.CanDM("support-7"), claims.CanDM("user-43"))
	fmt.Println(keys.Status().Keys)
	// Output:
	// user-42 true false
	// 1
}
