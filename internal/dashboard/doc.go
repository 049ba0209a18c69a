// Package dashboard serves the live dashboard of `consumer dashboard`: one
// page with per-second, per-minute and per-hour traffic charts, the global
// top talkers, bot share and the latest order-flood alarms, fed by a small
// read-only JSON API over the result tables in DynamoDB (APP-counters,
// APP-results, APP-alarms). README.md documents every endpoint and which
// items each panel reads.
//
// The page, its script and the charting library (uPlot, MIT, vendored
// under assets/vendor) are embedded in the binary: nothing is fetched from
// a CDN. Safe by default: it binds to 127.0.0.1 unless told otherwise,
// refuses foreign Host headers on loopback (DNS rebinding), answers GET
// and HEAD only, accepts only known and validated query parameters, never
// echoes request input, and sends a strict Content-Security-Policy; the
// page sets API data with textContent only.
//
// Reads are bounded: a chart is one BatchGetItem of known bucket keys, the
// top-N and bot panels one BatchGetItem over the last few windows, alarms
// one Query per alarm name (or a capped Scan), and responses are cached for
// half the refresh interval so any number of open pages costs one set of
// reads.
package dashboard
