'use strict'
// Preload for kinesis-local (kinesis-mock in Scala.js), which is configured only by
// environment variables and binds 0.0.0.0. Loaded with `node -r ./loopback.js`, it makes
// every numeric net.Server.listen bind 127.0.0.1 instead. When the requested port is
// KINESIS_MOCK_PLAIN_PORT or KINESIS_MOCK_TLS_PORT it binds port 0 (a free port, no race
// with other processes) and prints "FRESHET-PEER LISTENING <plain|tls> <port>".
var net = require('net')
var lifeline = require('./lifeline.js')

var kinds = {}
if (process.env.KINESIS_MOCK_PLAIN_PORT) kinds[Number(process.env.KINESIS_MOCK_PLAIN_PORT)] = 'plain'
if (process.env.KINESIS_MOCK_TLS_PORT) kinds[Number(process.env.KINESIS_MOCK_TLS_PORT)] = 'tls'

var listen = net.Server.prototype.listen
net.Server.prototype.listen = function() {
  var args = Array.prototype.slice.call(arguments)
  if (typeof args[0] !== 'number') return listen.apply(this, args)
  var port = args[0]
  var cb = args.filter(function(a) { return typeof a === 'function' })[0]
  var kind = kinds[port]
  var server = this
  if (kind) {
    server.once('listening', function() { lifeline.announce(kind, server.address().port) })
    port = 0
  }
  return cb ? listen.call(server, port, '127.0.0.1', cb) : listen.call(server, port, '127.0.0.1')
}
