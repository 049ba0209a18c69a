package records_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/pkg/records"
)

// The access-log layouts, as the Apache and nginx documentation defines
// them (lines written here from those definitions):
//
//	Apache  LogFormat "%v:%p %h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\"" vhost_combined
//	nginx   log_format main '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for"';
//	nginx   log_format vhost '$host $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"';
//	nginx   log_format xff '$http_x_forwarded_for - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"';
//	nginx   log_format xffq '"$http_x_forwarded_for" - $remote_user [$time_local] "$request" ...';
//	mod_ssl CustomLog logs/ssl_request_log "%t %h %{SSL_PROTOCOL}x %{SSL_CIPHER}x \"%r\" %b"
const (
	tail = ` [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"`

	lineVhost      = `example.com:80 203.0.113.7 - frank` + tail
	lineVhostIPv6  = `www.example.net:443 2001:db8::1 - -` + tail
	lineNginxHost  = `vhost1.example.org 198.51.100.23 - -` + tail
	lineXFFQuoted  = `"10.0.0.2, 10.0.0.1" - -` + tail
	lineXFFBare    = `10.5.102.222, 192.0.2.1 - -` + tail
	lineXFFOne     = `"198.51.100.4" - -` + tail
	lineXFFDash    = `"-" - -` + tail
	lineMain       = `192.0.2.9 - -` + tail + ` "203.0.113.50, 192.0.2.9"`
	lineMainNoXFF  = `192.0.2.9 - -` + tail + ` "-"`
	lineSSL        = `[10/Oct/2000:13:55:36 -0700] 192.0.2.10 TLSv1.3 TLS_AES_256_GCM_SHA384 "GET /index.html HTTP/1.1" 1234`
	lineSSLNoBytes = `[10/Oct/2000:13:55:36 -0700] 192.0.2.10 TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256 "GET / HTTP/1.1" -`
	lineHostname   = `client.example.com - -` + tail
	lineUnknown    = `unknown - -` + tail
)

type clientFields struct {
	ClientIP, Host, ForwardedFor, TLSProtocol, TLSCipher, Path string
	Bytes                                                      int64
}

func TestAccessLogLayouts(t *testing.T) {
	trusted := records.ClientPolicy{Source: records.ClientForwarded, TrustedProxies: mustPrefixes(t, "10.0.0.0/8,192.0.2.9")}
	tests := []struct {
		name   string
		line   string
		format records.Format
		policy records.ClientPolicy
		want   clientFields
		err    error // sentinel kind, nil for success
	}{
		{name: "vhost_combined", line: lineVhost, format: records.FormatVhostCombined,
			want: clientFields{ClientIP: "203.0.113.7", Host: "example.com:80", Path: "/apache_pb.gif", Bytes: 2326}},
		{name: "vhost_combined ipv6", line: lineVhostIPv6,
			want: clientFields{ClientIP: "2001:db8::1", Host: "www.example.net:443", Path: "/apache_pb.gif", Bytes: 2326}},
		{name: "nginx $host first", line: lineNginxHost,
			want: clientFields{ClientIP: "198.51.100.23", Host: "vhost1.example.org", Path: "/apache_pb.gif", Bytes: 2326}},
		{name: "xff first, quoted: the nearest proxy's view", line: lineXFFQuoted, format: records.FormatXFFCombined,
			want: clientFields{ClientIP: "10.0.0.1", ForwardedFor: "10.0.0.2, 10.0.0.1", Path: "/apache_pb.gif", Bytes: 2326}},
		{name: "xff first, quoted, trusted proxies skipped", line: lineXFFQuoted, policy: trusted,
			want: clientFields{ClientIP: "10.0.0.2", ForwardedFor: "10.0.0.2, 10.0.0.1", Path: "/apache_pb.gif", Bytes: 2326}},
		{name: "xff first, unquoted", line: lineXFFBare,
			want: clientFields{ClientIP: "192.0.2.1", ForwardedFor: "10.5.102.222, 192.0.2.1", Path: "/apache_pb.gif", Bytes: 2326}},
		{name: "xff first, unquoted, trusted", line: lineXFFBare, policy: records.ClientPolicy{Source: records.ClientForwarded, TrustedProxies: mustPrefixes(t, "192.0.2.0/24")},
			want: clientFields{ClientIP: "10.5.102.222", ForwardedFor: "10.5.102.222, 192.0.2.1", Path: "/apache_pb.gif", Bytes: 2326}},
		{name: "xff first, one hop", line: lineXFFOne,
			want: clientFields{ClientIP: "198.51.100.4", ForwardedFor: "198.51.100.4", Path: "/apache_pb.gif", Bytes: 2326}},
		{name: "xff first, no header: no client", line: lineXFFDash, err: records.ErrMalformed},
		{name: "nginx main: peer", line: lineMain,
			want: clientFields{ClientIP: "192.0.2.9", ForwardedFor: "203.0.113.50, 192.0.2.9", Path: "/apache_pb.gif", Bytes: 2326}},
		{name: "nginx main: trusted peer, forwarded client", line: lineMain, policy: trusted,
			want: clientFields{ClientIP: "203.0.113.50", ForwardedFor: "203.0.113.50, 192.0.2.9", Path: "/apache_pb.gif", Bytes: 2326}},
		{name: "nginx main without forwarded header", line: lineMainNoXFF, policy: trusted,
			want: clientFields{ClientIP: "192.0.2.9", Path: "/apache_pb.gif", Bytes: 2326}},
		{name: "ssl_request_log", line: lineSSL, format: records.FormatSSLRequest,
			want: clientFields{ClientIP: "192.0.2.10", TLSProtocol: "TLSv1.3", TLSCipher: "TLS_AES_256_GCM_SHA384", Path: "/index.html", Bytes: 1234}},
		{name: "ssl_request_log, no bytes", line: lineSSLNoBytes,
			want: clientFields{ClientIP: "192.0.2.10", TLSProtocol: "TLSv1.2", TLSCipher: "ECDHE-RSA-AES128-GCM-SHA256", Path: "/"}},
		{name: "host name as client (HostnameLookups)", line: lineHostname, err: records.ErrMalformed},
		{name: "unknown as client", line: lineUnknown, err: records.ErrMalformed},
		{name: "ssl_request_log cut short", line: lineSSL[:60], err: records.ErrTruncated},
		{name: "vhost-combined format refuses a plain line", line: lineMain, format: records.FormatVhostCombined, err: records.ErrMalformed},
		{name: "ssl-request format refuses vhost_combined", line: lineVhost, format: records.FormatSSLRequest, err: records.ErrMalformed},
		{name: "xff-combined format refuses ssl", line: lineSSL, format: records.FormatXFFCombined, err: records.ErrMalformed},
	}
	for _, tc := range tests {
		formats := []records.Format{tc.format}
		if tc.format == "" {
			formats = []records.Format{records.FormatCombined, records.FormatAuto}
		}
		for _, f := range formats {
			t.Run(tc.name+"/"+string(f), func(t *testing.T) {
				d, err := records.NewDecoderWith(f, records.Options{Client: tc.policy})
				if err != nil {
					t.Fatal(err)
				}
				var r records.Record
				err = d.Decode([]byte(tc.line), &r)
				if tc.err != nil {
					var de *records.DecodeError
					if !errors.Is(err, tc.err) || !errors.As(err, &de) {
						t.Fatalf("error %v, want a *DecodeError of kind %v", err, tc.err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				got := clientFields{r.ClientIP, r.Host, r.ForwardedFor, r.TLSProtocol, r.TLSCipher, r.Path, r.Bytes}
				if d := cmp.Diff(tc.want, got); d != "" {
					t.Errorf("(-want +got):\n%s", d)
				}
				if r.Time.IsZero() || r.Kind != records.KindHit {
					t.Errorf("time %v kind %v", r.Time, r.Kind)
				}
			})
		}
	}
}

func TestClientPolicyResolve(t *testing.T) {
	p := records.ClientPolicy{Source: records.ClientForwarded, TrustedProxies: mustPrefixes(t, "10.0.0.0/8")}
	peer := netip.MustParseAddr("10.1.1.1")
	tests := []struct {
		xff  []string
		want string
	}{
		{nil, "10.1.1.1"},
		{[]string{"203.0.113.9"}, "203.0.113.9"},
		{[]string{"198.51.100.1, 203.0.113.9, 10.0.0.5"}, "203.0.113.9"}, // left of an untrusted hop: the client's claim
		{[]string{"198.51.100.1", "10.0.0.5"}, "198.51.100.1"},           // several header lines
		{[]string{"garbage, 10.0.0.5"}, "10.0.0.5"},                      // stops at a non-address
		{[]string{"10.0.0.7, 10.0.0.5"}, "10.0.0.7"},                     // all trusted: the leftmost
	}
	for _, tc := range tests {
		if got := p.Resolve(peer, tc.xff).String(); got != tc.want {
			t.Errorf("Resolve(%v) = %s, want %s", tc.xff, got, tc.want)
		}
	}
	if got := p.Resolve(netip.MustParseAddr("203.0.113.1"), []string{"198.51.100.1"}).String(); got != "203.0.113.1" {
		t.Errorf("untrusted peer: %s", got)
	}
	if got := (records.ClientPolicy{}).Resolve(peer, []string{"203.0.113.9"}).String(); got != "10.1.1.1" {
		t.Errorf("peer policy: %s", got)
	}
}

func mustPrefixes(t *testing.T, s string) []netip.Prefix {
	t.Helper()
	p, err := records.ParsePrefixes(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
