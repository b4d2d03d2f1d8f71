package auth_test

import (
	"errors"
	"fmt"
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
