package dashboard

import (
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Access controls who may read a dashboard bound beyond loopback. The
// results it shows (client addresses, bot lists, order alarms) are not
// public: a non-loopback listener needs a token, an allow-list, or both.
type Access struct {
	// Token, when set, is required: given once as ?token= on the page URL
	// (then kept in an HttpOnly, SameSite=Strict cookie and removed from
	// the address bar by a redirect), or as "Authorization: Bearer".
	Token string
	// Allow, when set, lists the networks whose clients may connect (the
	// TCP peer: a proxy in front must be listed itself).
	Allow []netip.Prefix
}

// tokenCookie holds the token after the first visit.
const tokenCookie = "shardwatch_dashboard"

// minTokenLen keeps guessable tokens out.
const minTokenLen = 16

func (a Access) validate(loopback bool) error {
	if a.Token != "" && len(a.Token) < minTokenLen {
		return fmt.Errorf("%w: token: at least %d characters", ErrConfig, minTokenLen)
	}
	if !loopback && a.Token == "" && len(a.Allow) == 0 {
		return fmt.Errorf("%w: a dashboard on a non-loopback address needs a token (--token or SHARDWATCH_DASHBOARD_TOKEN) or an allow-list (--allow CIDRs)", ErrConfig)
	}
	return nil
}

// check answers a request that may not pass, and reports whether it did.
// It never logs or echoes the token.
func (a Access) check(w http.ResponseWriter, r *http.Request) bool {
	if len(a.Allow) > 0 && !a.allowed(r.RemoteAddr) {
		writeError(w, http.StatusForbidden, "your address is not on this dashboard's allow-list")
		return false
	}
	if a.Token == "" {
		return true
	}
	if q := r.URL.Query(); q.Has("token") {
		if !a.match(q.Get("token")) {
			writeError(w, http.StatusUnauthorized, "wrong token")
			return false
		}
		http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: a.Token, Path: "/", HttpOnly: true,
			Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
		// Drop the token from the address bar and history.
		q.Del("token")
		u := *r.URL
		u.RawQuery = q.Encode()
		http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
		return false
	}
	if c, err := r.Cookie(tokenCookie); err == nil && a.match(c.Value) {
		return true
	}
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && a.match(v) {
		return true
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="shardwatch dashboard"`)
	writeError(w, http.StatusUnauthorized, "this dashboard needs its token: open it once as /?token=...")
	return false
}

func (a Access) match(v string) bool {
	return subtle.ConstantTimeCompare([]byte(v), []byte(a.Token)) == 1
}

func (a Access) allowed(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range a.Allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
