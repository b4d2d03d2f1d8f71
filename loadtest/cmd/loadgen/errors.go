package main

import "errors"

var (
	// errFrame reports a frame that is not what the protocol allows at this point.
	errFrame = errors.New("loadgen: unexpected frame")
	// errConnectRefused reports a CONNECT answered with CONNECT_ERROR.
	errConnectRefused = errors.New("loadgen: connect refused")
	// errTooLarge reports a message over the read limit.
	errTooLarge = errors.New("loadgen: message too large")
	// errClosed reports a connection the server closed or disconnected.
	errClosed = errors.New("loadgen: connection closed by server")
	// errSetup reports a run whose connections could not all be set up in time.
	errSetup = errors.New("loadgen: setup failed")
	// errProc reports a /proc/<pid>/status without a readable VmRSS.
	errProc = errors.New("loadgen: cannot read process memory")
	// errUsage reports bad flags.
	errUsage = errors.New("loadgen: usage")
)
