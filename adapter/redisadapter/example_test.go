package redisadapter_test

import (
	"context"
	"log"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/roomcast/roomcast/adapter/redisadapter"
	"github.com/roomcast/roomcast/socketio"
)

// A node of a fleet that shares rooms through Redis with other Roomcast
// nodes and with Node.js socket.io servers using @socket.io/redis-adapter.
func ExampleNew() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cluster, err := redisadapter.New(ctx, redisadapter.Config{Client: rdb, Node: "node-1"})
	if err != nil {
		log.Fatal(err)
	}
	defer cluster.Close()

	srv, err := socketio.New(socketio.Config{Adapter: cluster.Factory(), Node: "node-1"})
	if err != nil {
		log.Fatal(err)
	}
	srv.Sockets().OnConnection(func(s *socketio.Socket) {
		_ = s.Join("lobby")
		// Reaches the lobby on every node of the fleet.
		_ = srv.Sockets().To("lobby").Emit("joined", s.ID())
	})
	http.Handle("/socket.io/", srv)
	http.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := cluster.Ready(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	log.Fatal(http.ListenAndServe(":8080", nil))
}

// The sharded adapter on a Redis Cluster: a room's broadcasts only reach
// the nodes with a member in it.
func ExampleNew_sharded() {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"redis-1:6379", "redis-2:6379", "redis-3:6379"}})
	defer rdb.Close()
	cluster, err := redisadapter.New(context.Background(), redisadapter.Config{Client: rdb, Mode: redisadapter.Sharded})
	if err != nil {
		log.Fatal(err)
	}
	defer cluster.Close()
	srv, err := socketio.New(socketio.Config{Adapter: cluster.Factory()})
	if err != nil {
		log.Fatal(err)
	}
	http.Handle("/socket.io/", srv)
	log.Fatal(http.ListenAndServe(":8080", nil))
}
