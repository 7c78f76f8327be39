'use strict'
// Starts dynalite on 127.0.0.1 with near-zero table state delays. Its default port (4567)
// collides with kinesalite's, so it always gets a port: node dynalite.js [port]; port 0
// (the default) picks a free one. Prints "FRESHET-PEER LISTENING http <port>" once it
// accepts connections.
var lifeline = require('./lifeline.js')
var dynalite = require('dynalite')

var server = dynalite({
  createTableMs: 0,
  deleteTableMs: 0,
  updateTableMs: 0,
})
server.keepAliveTimeout = 60000
server.listen(Number(process.argv[2] || 0), '127.0.0.1', function() {
  lifeline.announce('http', server.address().port)
})
