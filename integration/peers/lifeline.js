'use strict'
// Ends this Node process when its parent (the Go test binary) closes our stdin, so a peer
// never outlives the test that started it, even when that test binary is killed.
// Loaded with `node -r ./lifeline.js` or required by the launch scripts.
// The peers keep only in-memory state, so ending at once is safe; a graceful exit could
// wait for idle keep-alive connections to close.
function end() { process.kill(process.pid, 'SIGKILL') }
process.stdin.on('end', end)
process.stdin.on('error', end)
process.stdin.resume()

// announce prints the line the Go harness waits for: the kind of listener and its port.
exports.announce = function(kind, port) {
  process.stdout.write('FRESHET-PEER LISTENING ' + kind + ' ' + port + '\n')
}
