package socketio

import "github.com/roomcast/roomcast/adapter"

type (
	adapterMessage = adapter.Message
	adapterOptions = adapter.Options
)

var newAdapterMessage = adapter.NewMessage
