// Readiness probe for the local AWS stack: one real API call per attempt
// (ListStreams, ListTables, ListTopics), so "ready" means "answers requests",
// not merely "port open". Uses only node, which the stack needs anyway, so CI
// machines without curl work too.
//
// Usage: node probe.js SERVICE PORT [--wait MS] [--pid PID]
//   SERVICE is kinesis | dynamodb | sns. Exit 0 when ready, 1 when not ready
//   before the deadline, 3 when --pid exited first (fail fast on a crash).
'use strict'

var http = require('http')

var service = process.argv[2], port = Number(process.argv[3])
var waitMs = 0, pid = 0
for (var i = 4; i < process.argv.length; i++) {
  if (process.argv[i] === '--wait') waitMs = Number(process.argv[++i])
  else if (process.argv[i] === '--pid') pid = Number(process.argv[++i])
}

var amzDate = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '')
function auth(svc) {
  // The local servers check that a SigV4 header is present and well formed,
  // not the signature itself.
  return 'AWS4-HMAC-SHA256 Credential=local/' + amzDate.slice(0, 8) + '/us-east-1/' + svc +
    '/aws4_request, SignedHeaders=host;x-amz-date, Signature=' + '0'.repeat(64)
}

var requests = {
  kinesis: {
    headers: {'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': 'Kinesis_20131202.ListStreams',
      'X-Amz-Date': amzDate, 'Authorization': auth('kinesis')},
    body: '{}', expect: '"StreamNames"'},
  dynamodb: {
    headers: {'Content-Type': 'application/x-amz-json-1.0', 'X-Amz-Target': 'DynamoDB_20120810.ListTables',
      'X-Amz-Date': amzDate, 'Authorization': auth('dynamodb')},
    body: '{"Limit":1}', expect: '"TableNames"'},
  sns: {
    headers: {'Content-Type': 'application/x-www-form-urlencoded', 'X-Amz-Date': amzDate, 'Authorization': auth('sns')},
    body: 'Action=ListTopics&Version=2010-03-31', expect: 'ListTopicsResponse'},
}

var req = requests[service]
if (!req || !port) {
  console.error('usage: node probe.js kinesis|dynamodb|sns PORT [--wait MS] [--pid PID]')
  process.exit(2)
}

var deadline = Date.now() + waitMs
var lastErr = 'no attempt'

function alive(p) {
  try { process.kill(p, 0); return true } catch (e) { return e.code === 'EPERM' }
}

function attempt() {
  var r = http.request({host: '127.0.0.1', port: port, method: 'POST', path: '/', headers: req.headers, timeout: 2000},
    function(res) {
      var body = ''
      res.setEncoding('utf8')
      res.on('data', function(c) { body += c })
      res.on('end', function() {
        if (res.statusCode === 200 && body.indexOf(req.expect) >= 0) process.exit(0)
        lastErr = 'HTTP ' + res.statusCode + ': ' + body.slice(0, 200)
        retry()
      })
    })
  r.on('timeout', function() { r.destroy(new Error('timeout after 2s')) })
  r.on('error', function(err) { lastErr = err.message; retry() })
  r.end(req.body)
}

function retry() {
  if (pid && !alive(pid)) {
    console.error(service + ': process ' + pid + ' exited before becoming ready')
    process.exit(3)
  }
  if (Date.now() >= deadline) {
    if (waitMs > 0) console.error(service + ' on 127.0.0.1:' + port + ' not ready after ' + waitMs + ' ms: ' + lastErr)
    process.exit(1)
  }
  setTimeout(attempt, 100)
}

attempt()
