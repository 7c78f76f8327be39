'use strict'
// Starts kinesalite on 127.0.0.1 (it has no host flag) with near-zero stream state delays
// and a generous shard limit. Usage: node kinesalite.js [port]; port 0 (the default) picks
// a free one. Prints "FRESHET-PEER LISTENING http <port>" once it accepts connections.
var lifeline = require('./lifeline.js')
var kinesalite = require('kinesalite')

var server = kinesalite({
  createStreamMs: 0,
  deleteStreamMs: 0,
  updateStreamMs: 0,
  shardLimit: 10000,
})
server.keepAliveTimeout = 60000
server.listen(Number(process.argv[2] || 0), '127.0.0.1', function() {
  lifeline.announce('http', server.address().port)
})
