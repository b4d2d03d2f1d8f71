package parser_test

import (
	"fmt"

	"github.com/roomcast/roomcast/internal/parser"
)

// Encoding an event with a binary argument: one text message, then one
// binary message per attachment.
func ExampleMarshalArgs() {
	data, attachments, typ, err := parser.MarshalArgs("upload", []any{"photo.png", []byte{0xca, 0xfe}}, false)
	if err != nil {
		panic(err)
	}
	p := parser.Packet{Type: typ, Namespace: "/files", ID: 3, Data: data, Attachments: attachments}
	fmt.Printf("%s\n", parser.AppendText(nil, &p))
	fmt.Printf("% x\n", attachments[0])
	// Output:
	// 51-/files,3["upload","photo.png",{"_placeholder":true,"num":0}]
	// ca fe
}

// Decoding the messages of one connection: the binary packet is complete
// with its last attachment.
func ExampleDecoder() {
	var d parser.Decoder
	messages := []struct {
		data   string
		binary bool
	}{
		{`2/chat,["message","hi"]`, false},
		{`51-["upload",{"_placeholder":true,"num":0}]`, false},
		{"\x01\x02", true},
	}
	for _, m := range messages {
		p, err := d.Decode([]byte(m.data), m.binary)
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		if p == nil {
			fmt.Println("awaiting attachments")
			continue
		}
		name, _ := parser.EventName(p.Data)
		args, _ := parser.UnmarshalArgs(p.Data, p.Attachments)
		fmt.Printf("%v %s %q %v\n", p.Type, p.Namespace, name, args[1:])
	}
	// Output:
	// EVENT /chat "message" [hi]
	// awaiting attachments
	// BINARY_EVENT / "upload" [[1 2]]
}
