package streams

// queueOperations are the queue operations, served beside the stream operations.
var queueOperations = map[string]opFunc{}
