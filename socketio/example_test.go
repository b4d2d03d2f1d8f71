package socketio_test

import (
	"fmt"
	"log"
	"net/http"

	"github.com/roomcast/roomcast/socketio"
)

func Example() {
	srv, err := socketio.New(socketio.Config{})
	if err != nil {
		log.Fatal(err)
	}
	chat, _ := srv.Of("/chat")
	chat.Use(func(s *socketio.Socket) error {
		if s.Handshake().Auth["token"] == nil {
			return socketio.NewConnectError("token required", nil)
		}
		return nil
	})
	chat.OnConnection(func(s *socketio.Socket) {
		_ = s.Join("lobby")
		s.On("message", func(e *socketio.Event) {
			// Relay to everybody else in the lobby, then acknowledge.
			_ = s.To("lobby").Emit("message", e.Args...)
			_ = e.Ack("delivered")
		})
		s.OnDisconnect(func(reason string) { log.Println(s.ID(), "left:", reason) })
	})
	http.Handle("/socket.io/", srv)
	fmt.Println(chat.Name())
	// Output: /chat
}
