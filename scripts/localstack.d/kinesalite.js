// Starts kinesalite bound to 127.0.0.1. Its own cli.js listens on every
// interface and cannot be told otherwise; a shared developer machine should not
// expose an unauthenticated Kinesis on the network.
//
// Usage: node kinesalite.js --modules DIR --port P [--path DIR] [kinesalite options]
'use strict'

var path = require('path')

function parseArgs(argv) {
  var out = {}
  for (var i = 0; i < argv.length; i++) {
    var m = /^--([^=]+)(?:=(.*))?$/.exec(argv[i])
    if (!m) throw new Error('unexpected argument ' + argv[i])
    if (m[2] !== undefined) out[m[1]] = m[2]
    else out[m[1]] = argv[++i]
  }
  return out
}

var args = parseArgs(process.argv.slice(2))
if (!args.modules || !args.port) {
  console.error('usage: node kinesalite.js --modules DIR --port P [--path DIR] [--createStreamMs N] ...')
  process.exit(2)
}

var opts = {}
;['createStreamMs', 'deleteStreamMs', 'updateStreamMs', 'shardLimit'].forEach(function(k) {
  if (args[k] !== undefined) opts[k] = Number(args[k])
})
if (args.path) opts.path = args.path

var kinesalite = require(path.join(args.modules, 'kinesalite'))
var server = kinesalite(opts)
var host = args.host || '127.0.0.1'

// kinesalite 3.3.3 answers a request stream error with `throw err`
// (index.js, httpHandler), so a client killed while it sends a request
// body ("aborted", ECONNRESET: a SIGKILLed worker) takes the whole server
// down. The chaos run hit it once in 50 faults. Its handler gets a
// request whose 'error' listeners drop the dead exchange instead.
var handlers = server.listeners('request')
server.removeAllListeners('request')
server.on('request', function(req, res) {
  var on = req.on
  req.on = function(ev, fn) {
    if (ev !== 'error') return on.apply(this, arguments)
    return on.call(this, ev, function(err) {
      console.error('kinesalite: request from a client that went away: ' + err.message)
      res.destroy()
    })
  }
  handlers.forEach(function(h) { h.call(server, req, res) })
})

server.on('error', function(err) {
  console.error('kinesalite: ' + err.message)
  process.exit(1)
})

server.listen(Number(args.port), host, function() {
  var a = server.address()
  console.log('kinesalite listening at http://%s:%s (path: %s)', a.address, a.port, opts.path || 'memory')
})

// Close the LevelDB store on TERM so a persistent stack restarts from a clean
// log; give up after 2 s rather than hang on keep-alive clients.
function stop() {
  setTimeout(function() { process.exit(0) }, 2000).unref()
  if (server.closeAllConnections) server.closeAllConnections()
  server.close(function() { process.exit(0) })
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
