package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/roomcast/roomcast/internal/ratelimit"
)

func Example() {
	// 5 events per second per user, bursts of 10; a failed CONNECT costs 5.
	events, err := ratelimit.NewMemory(ratelimit.Config{Rate: 5, Burst: 10})
	if err != nil {
		panic(err)
	}
	defer events.Close()
	ok, _ := events.Allow("connect-ip:203.0.113.7", 5)
	fmt.Println("first failed CONNECT:", ok)
	ok, _ = events.Allow("connect-ip:203.0.113.7", 5)
	fmt.Println("second:", ok)
	ok, retry := events.Allow("connect-ip:203.0.113.7", 5)
	fmt.Println("third:", ok, retry > 0)
	// Output:
	// first failed CONNECT: true
	// second: true
	// third: false true
}

func ExampleMemoryCounter() {
	conns := ratelimit.NewMemoryCounter()
	release, _ := conns.Acquire(context.Background(), "user:alice", 1)
	_, err := conns.Acquire(context.Background(), "user:alice", 1)
	fmt.Println(errors.Is(err, ratelimit.ErrTooMany))
	release()
	release() // idempotent
	_, err = conns.Acquire(context.Background(), "user:alice", 1)
	fmt.Println(err)
	// Output:
	// true
	// <nil>
}

func ExampleClientIP() {
	trusted, err := ratelimit.ParsePrefixes("10.0.0.0/8, fd00::/8")
	if err != nil {
		panic(err)
	}
	r, _ := http.NewRequest("GET", "/socket.io/", nil)
	r.RemoteAddr = "10.0.0.5:41234" // the load balancer
	r.Header.Set("X-Forwarded-For", "198.51.100.1, 203.0.113.7")
	fmt.Println(ratelimit.ClientIP(r, trusted))
	// Output: 203.0.113.7
}
