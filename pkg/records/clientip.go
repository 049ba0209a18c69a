package records

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"unsafe"
)

// ClientSource says which address of a request becomes Record.ClientIP.
type ClientSource uint8

const (
	// ClientPeer is the socket peer as the server logged it (%h,
	// $remote_addr). A layout that logs no peer, only the X-Forwarded-For
	// list, gives its rightmost hop: the address the nearest proxy saw.
	ClientPeer ClientSource = iota
	// ClientForwarded is the first untrusted hop: the peer, unless it is a
	// trusted proxy; then X-Forwarded-For read from the right, skipping
	// trusted proxies. Hops left of an untrusted one are the client's own
	// claims and are never believed. If every hop is trusted, the leftmost.
	// A hop that is not an IP address stops the walk at the last address
	// read.
	ClientForwarded
)

// ParseClientSource maps the config value ("peer" or "forwarded").
func ParseClientSource(s string) (ClientSource, error) {
	switch s {
	case "", "peer":
		return ClientPeer, nil
	case "forwarded":
		return ClientForwarded, nil
	}
	return 0, fmt.Errorf("%q: want peer or forwarded", s)
}

// ClientPolicy picks the client address of a request: the access-log
// decoders and the HTTP collector share it, so one rule decides.
type ClientPolicy struct {
	Source ClientSource
	// TrustedProxies are the proxies whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
}

func (p ClientPolicy) trusted(a netip.Addr) bool {
	for _, pr := range p.TrustedProxies {
		if pr.Contains(a) {
			return true
		}
	}
	return false
}

// Resolve returns the client for a request from peer with the given
// X-Forwarded-For header values (in header order).
func (p ClientPolicy) Resolve(peer netip.Addr, forwardedFor []string) netip.Addr {
	if p.Source != ClientForwarded || !p.trusted(peer) {
		return peer
	}
	addr := peer
	for v := len(forwardedFor) - 1; v >= 0; v-- {
		hops := forwardedFor[v]
		for hops != "" {
			i := strings.LastIndexByte(hops, ',')
			hop := strings.TrimSpace(hops[i+1:])
			hops = hops[:max(i, 0)]
			a, ok := parseIP(hop)
			if !ok {
				a, ok = parseIPPort(hop)
			}
			if !ok {
				return addr
			}
			addr = a
			if !p.trusted(a) {
				return a
			}
		}
	}
	return addr
}

// hop is one address of a line, as a span of it.
type hop struct{ start, end int }

// pickForwarded applies the policy to a logged line: peer is the peer's
// span (start < 0: the layout logs none) and list the X-Forwarded-For
// span (start < 0: none). It returns the client's span, or ok false when
// no hop it would choose is an IP address.
func (p ClientPolicy) pickForwarded(line []byte, peer, list hop) (hop, bool) {
	var cur hop
	var addr netip.Addr
	walk := true
	if peer.start >= 0 {
		a, ok := parseIPBytes(line[peer.start:peer.end])
		if !ok {
			return hop{}, false
		}
		cur, addr = peer, a
		walk = p.Source == ClientForwarded && p.trusted(a)
	}
	if !walk || list.start < 0 {
		return cur, peer.start >= 0
	}
	end := list.end
	for end > list.start {
		i := end - 1
		for i >= list.start && line[i] != ',' {
			i--
		}
		s, e := i+1, end
		for s < e && line[s] == ' ' {
			s++
		}
		for e > s && line[e-1] == ' ' {
			e--
		}
		end = max(i, list.start)
		s, e = stripPort(line, s, e)
		a, ok := parseIPBytes(line[s:e])
		if !ok {
			break
		}
		cur, addr = hop{s, e}, a
		if peer.start < 0 && p.Source == ClientPeer {
			return cur, true // no peer logged: the nearest proxy's view
		}
		if !p.trusted(a) {
			return cur, true
		}
	}
	return cur, addr.IsValid()
}

// parseIPBytes parses an IPv4 or IPv6 address (no zone, no port) without
// allocating on the common paths.
func parseIPBytes(b []byte) (netip.Addr, bool) {
	if !ipShape(b) {
		return netip.Addr{}, false
	}
	// netip.ParseAddr does not keep its argument.
	return parseIP(unsafe.String(unsafe.SliceData(b), len(b)))
}

// parseIPPort reads "ip:port" or "[ipv6]:port" (hops some proxies write).
func parseIPPort(s string) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Addr().Zone() != "" {
		return netip.Addr{}, false
	}
	return ap.Addr(), true
}

// stripPort narrows line[s:e] to the address of "a.b.c.d:port",
// "[ipv6]:port" or "[ipv6]"; other text is returned as it is.
func stripPort(line []byte, s, e int) (int, int) {
	b := line[s:e]
	if len(b) > 2 && b[0] == '[' {
		if c := bytes.IndexByte(b, ']'); c > 0 && (c == len(b)-1 || b[c+1] == ':') {
			return s + 1, s + c
		}
		return s, e
	}
	if c := bytes.IndexByte(b, ':'); c > 0 && bytes.IndexByte(b[c+1:], ':') < 0 && bytes.IndexByte(b[:c], '.') > 0 {
		return s, s + c // IPv4 with a port (one colon, dots before it)
	}
	return s, e
}

func parseIP(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a, true
}

// ipShape is a cheap filter before netip.ParseAddr, whose errors
// allocate: only hex digits, '.' and ':', and at least one separator. A
// host name ("example.com") fails it at its first non-hex letter.
func ipShape(b []byte) bool {
	if len(b) < 2 || len(b) > 45 {
		return false
	}
	sep := false
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		case c == '.' || c == ':':
			sep = true
		default:
			return false
		}
	}
	return sep
}

// ParsePrefixes reads a comma-separated list of CIDRs or single addresses
// (a trusted-proxies setting).
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q: not a CIDR or address", f)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
