// Package collector is an HTTP tracking-pixel collector: each hit becomes
// one clickstream JSON record (see traffic.Hit) handed to a bounded sink.
//
// Endpoints: GET /collect (204 No Content) and GET /collect.gif (a 1x1
// transparent GIF), and POST to either with a small JSON object (also as
// text/plain, what navigator.sendBeacon sends) or a form. Parameters:
//
//	url  absolute URL of the page viewed     (else p, else the Referer header)
//	p    path of the page viewed, from "/"
//	r    the page's own referrer (document.referrer)
//	e    event name, [a-z0-9_.-]{1,32}       (default "pageview")
//
// The client IP is the TCP peer, unless the peer is in TrustedProxies: then
// X-Forwarded-For is read from the right, skipping trusted hops, and the
// first untrusted address is the client. The session id is the sw_sid
// cookie (32 hex characters), set when absent or invalid: 128 random bits,
// HttpOnly, SameSite=Lax, Secure unless configured off (plain-HTTP demos).
//
// Hardening: each client IP (as resolved above, so a forged
// X-Forwarded-For from an untrusted peer cannot dodge it) is rate limited
// with a token bucket (RateLimit/RateBurst, 429 with Retry-After), the
// buckets kept in a bounded LRU (MaxClients); bodies are limited (MaxBodyBytes, 413), headers too
// (MaxHeaderBytes; Go's server answers 431 and allows 4 KiB of slack over
// the limit), every timeout is set, and no response ever contains request
// input: bodies and headers are fixed texts. A full sink answers 503 with
// Retry-After and is counted; nothing is buffered beyond the sink's bound.
package collector
