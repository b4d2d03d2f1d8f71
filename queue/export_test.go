package queue

// MaxReplayBuffer is maxReplayBuffer, for TestReplayBufferOverflow.
const MaxReplayBuffer = maxReplayBuffer
