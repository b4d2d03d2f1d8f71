package engineio_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/roomcast/roomcast/engineio"
)

// An echo server, driven by a long-polling client.
func Example() {
	srv, err := engineio.New(engineio.Config{
		OnConnection: func(c *engineio.Conn) {
			c.SetHandlers(engineio.Handlers{
				OnMessage: func(data []byte, binary bool) {
					_ = c.Send(engineio.TextFrame("echo: " + string(data)))
				},
				OnClose: func(reason engineio.Reason, err error) {
					fmt.Println("closed:", reason)
				},
			})
		},
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	get := func(query string) string {
		resp, err := client.Get(hs.URL + "/socket.io/?EIO=4&transport=polling" + query)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	open := get("")
	sid := open[strings.Index(open, `"sid":"`)+7:][:20]

	resp, err := client.Post(hs.URL+"/socket.io/?EIO=4&transport=polling&sid="+sid, "text/plain", strings.NewReader("4hello"))
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(get("&sid=" + sid))

	_ = srv.Shutdown(context.Background())
	// Output:
	// 4echo: hello
	// closed: server shutting down
}
