package botdetect

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/shardwatch/shardwatch/pkg/processors"
)

// ProfileConfig configures the per-IP (and per-session) behaviour profile
// that spans windows.
type ProfileConfig struct {
	// Enabled turns the profile on.
	Enabled bool `yaml:"enabled"`
	// MaxIPs bounds the profiles one shard keeps (IPs plus sessions); when
	// full, the least recently seen tenth is evicted.
	MaxIPs int `yaml:"max_ips"`
	// Short and Long are the two horizons: counters decay exponentially
	// with these time constants (event time).
	Short time.Duration `yaml:"short_horizon"`
	Long  time.Duration `yaml:"long_horizon"`
	// MinRequests is the decayed request count a horizon needs before it
	// is scored.
	MinRequests int `yaml:"min_requests"`
	// Threshold is the score (0-1 and above) that flags.
	Threshold float64 `yaml:"threshold"`
	// PersistEvery is how often (processor clock) the profiles are written
	// for a new lease owner to restore.
	PersistEvery time.Duration `yaml:"persist_every"`
	// FormPaths are path prefixes of forms and APIs (case-sensitive);
	// requests with a method other than GET/HEAD count as forms too.
	FormPaths []string `yaml:"form_paths"`
	// Sessions keeps a profile per session id where records carry one.
	Sessions bool `yaml:"sessions"`
}

func defaultProfileConfig() ProfileConfig {
	return ProfileConfig{
		Enabled: true, MaxIPs: 50_000, Short: time.Hour, Long: 24 * time.Hour,
		MinRequests: 20, Threshold: 0.6, PersistEvery: 5 * time.Minute, Sessions: true,
		FormPaths: []string{"/api/", "/login", "/signin", "/signup", "/register", "/account", "/checkout",
			"/cart", "/basket", "/contact", "/comment", "/submit", "/subscribe", "/search", "/wp-login.php",
			"/xmlrpc.php", "/ajax", "/graphql", "/form", "/order", "/password", "/otp", "/verify"},
	}
}

func (c ProfileConfig) validate(path string) error {
	switch {
	case c.MaxIPs < 1 || c.MaxIPs > 1_000_000:
		return processors.FieldError(path+".max_ips", "must be between 1 and 1000000")
	case c.Short < time.Minute || c.Short > 7*24*time.Hour:
		return processors.FieldError(path+".short_horizon", "must be between 1m and 168h")
	case c.Long < c.Short || c.Long > 7*24*time.Hour:
		return processors.FieldError(path+".long_horizon", "must be between short_horizon and 168h")
	case c.MinRequests < 2 || c.MinRequests > 100_000:
		return processors.FieldError(path+".min_requests", "must be between 2 and 100000")
	case c.Threshold <= 0 || c.Threshold > 2:
		return processors.FieldError(path+".threshold", "must be in (0, 2]")
	case c.PersistEvery < 10*time.Second || c.PersistEvery > 24*time.Hour:
		return processors.FieldError(path+".persist_every", "must be between 10s and 24h")
	case len(c.FormPaths) > 64:
		return processors.FieldError(path+".form_paths", "at most 64 prefixes")
	}
	for i, p := range c.FormPaths {
		if !strings.HasPrefix(p, "/") || len(p) > 128 {
			return processors.FieldError(fmt.Sprintf("%s.form_paths[%d]", path, i), "must start with / and be at most 128 bytes")
		}
	}
	return nil
}

// Profile signals: bits of a profile verdict, in reason order.
const (
	sigNoAssets = iota
	sigOrphanForm
	sigRegular
	sigLowEntropy
	sigNoReferer
	sigNoCookie
	sigUnadvertised
	sig4xx
	sigRobots
	numSignals
)

// signalNames are the reasons "profile:<name>".
var signalNames = [numSignals]string{"no-assets", "orphan-form", "regular", "low-entropy", "no-referer",
	"no-cookie", "unadvertised", "4xx", "robots"}

// signalWeights add up to the score; Threshold (default 0.6) needs at
// least two strong signals or three weaker ones.
var signalWeights = [numSignals]float64{0.30, 0.35, 0.25, 0.20, 0.15, 0.10, 0.10, 0.25, 0.20}

// Counters of one horizon (exponentially decayed, event time).
const (
	cReq = iota
	cPages
	cAssets
	cForms
	cOrphan     // forms without a page view in the 30 minutes before
	cNoRefPages // pages without a referer
	cNoCookie   // requests without a session id where the source has them
	c4xx
	cUnadv    // pages whose path no referer of the shard named
	cReferred // requests with a referer
	numCounters
)

// profile is one client's (IP or session) behaviour across windows.
// Memory: ~150 bytes here, plus the key and the index map entry.
type profile struct {
	key      string
	last     int64 // unix ms of the newest request
	lastPage int64 // unix ms of the newest page view (0: none)
	short    [numCounters]float32
	long     [numCounters]float32
	gapMean  float32 // EWMA of inter-request gaps (s)
	gapSq    float32 // EWMA of squared gaps
	gapN     uint16
	robots   bool
	sessions bool           // the source carries session ids for this client
	paths    [16]uint16     // page and form paths by hash bucket
	verdict  profileVerdict // newest evaluation
	_        [0]func()      // not comparable
}

// profileVerdict is a profile's evaluation: score (x100) and signal bits.
type profileVerdict struct {
	Score   uint16
	Signals uint16
}

// reqKind classifies a request path.
type reqKind uint8

const (
	kindPage reqKind = iota
	kindAsset
	kindForm
	kindRobots
)

var assetExts = []string{".css", ".js", ".mjs", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".ico", ".webp", ".avif",
	".woff", ".woff2", ".ttf", ".otf", ".eot", ".map", ".mp4", ".webm", ".mp3", ".json"}

var assetPrefixes = []string{"/static/", "/assets/", "/image/", "/images/", "/img/", "/css/", "/js/", "/fonts/",
	"/media/", "/favicon", "/wp-content/", "/wp-includes/", "/_next/", "/dist/"}

// stripQuery returns path without its query string or fragment.
func stripQuery(path string) string {
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		return path[:i]
	}
	return path
}

func (f *factory) kindOf(method, path string) reqKind {
	p := stripQuery(path)
	if p == "/robots.txt" {
		return kindRobots
	}
	if method != "" && method != "GET" && method != "HEAD" {
		return kindForm
	}
	for _, fp := range f.cfg.Profile.FormPaths {
		if strings.HasPrefix(p, fp) {
			return kindForm
		}
	}
	if dot := strings.LastIndexByte(p, '.'); dot >= 0 && dot > strings.LastIndexByte(p, '/') {
		ext := p[dot:]
		for _, e := range assetExts {
			if len(ext) == len(e) && strings.EqualFold(ext, e) {
				return kindAsset
			}
		}
	}
	for _, ap := range assetPrefixes {
		if strings.HasPrefix(p, ap) {
			return kindAsset
		}
	}
	return kindPage
}

// refererPath returns the path of a referer URL ("" when none).
func refererPath(ref string) string {
	if ref == "" || ref == "-" {
		return ""
	}
	if i := strings.Index(ref, "://"); i >= 0 {
		ref = ref[i+3:]
		j := strings.IndexByte(ref, '/')
		if j < 0 {
			return "/"
		}
		ref = ref[j:]
	}
	return stripQuery(ref)
}

// orphanWindow: a form request counts as orphan without a page view by
// the same client in this long before.
const orphanWindow = 30 * time.Minute

// maxGap: longer gaps are session breaks, not timing evidence.
const maxGap = 30 * time.Minute

// advertisedMax bounds the shard's set of paths seen in referers.
const advertisedMax = 8192

// profiles holds one shard's profiles.
type profiles struct {
	cfg        ProfileConfig
	index      map[string]int32
	list       []profile
	advertised map[uint64]struct{}
	// shortK and longK are -1/tau in 1/ms.
	shortK, longK float64
	dirty         bool
	evicted       int64
}

func newProfiles(cfg ProfileConfig) *profiles {
	return &profiles{
		cfg: cfg, index: map[string]int32{}, advertised: map[uint64]struct{}{},
		shortK: -1 / float64(cfg.Short.Milliseconds()), longK: -1 / float64(cfg.Long.Milliseconds()),
	}
}

// get returns key's profile, adding it (evicting when full).
func (ps *profiles) get(key string) *profile {
	if i, ok := ps.index[key]; ok {
		return &ps.list[i]
	}
	if len(ps.list) >= ps.cfg.MaxIPs {
		ps.evict(max(1, ps.cfg.MaxIPs/10))
	}
	key = strings.Clone(key)
	ps.index[key] = int32(len(ps.list))
	ps.list = append(ps.list, profile{key: key})
	return &ps.list[len(ps.list)-1]
}

// getBytes is get for a key in a reused buffer: no allocation when the
// profile exists.
func (ps *profiles) getBytes(key []byte) *profile {
	if i, ok := ps.index[string(key)]; ok {
		return &ps.list[i]
	}
	return ps.get(string(key))
}

// evict drops the n least recently seen profiles.
func (ps *profiles) evict(n int) {
	order := make([]int64, len(ps.list))
	for i := range ps.list {
		order[i] = ps.list[i].last
	}
	slices.Sort(order)
	cut := order[min(n, len(order))-1]
	kept := ps.list[:0]
	dropped := 0
	for _, p := range ps.list {
		if p.last <= cut && dropped < n {
			dropped++
			continue
		}
		kept = append(kept, p)
	}
	clear(ps.list[len(kept):])
	ps.list = kept
	clear(ps.index)
	for i := range ps.list {
		ps.index[ps.list[i].key] = int32(i)
	}
	ps.evicted += int64(dropped)
	ps.dirty = true
}

// expire drops profiles idle for longer than the long horizon before now
// (event time, unix ms).
func (ps *profiles) expire(now int64) {
	limit := now - 2*ps.cfg.Long.Milliseconds()
	n := 0
	for i := range ps.list {
		if ps.list[i].last < limit {
			n++
		}
	}
	if n > 0 {
		ps.evict(n)
	}
}

// observe is one request as the profile sees it.
type observe struct {
	at       int64 // unix ms
	kind     reqKind
	path     string // without query
	referred bool
	session  bool // the record carries a session id
	noCookie bool // the source has session ids but this request none
	status   int
}

func (ps *profiles) advertise(path string) {
	if path == "" || len(ps.advertised) >= advertisedMax {
		return
	}
	ps.advertised[pathHash(path)] = struct{}{}
}

// add records o in p and re-evaluates it.
func (ps *profiles) add(p *profile, o *observe) profileVerdict {
	ps.dirty = true
	if p.last != 0 {
		dt := o.at - p.last
		if dt > 0 {
			ds, dl := float32(math.Exp(float64(dt)*ps.shortK)), float32(math.Exp(float64(dt)*ps.longK))
			for i := range p.short {
				p.short[i] *= ds
				p.long[i] *= dl
			}
		}
		if dt >= 0 && dt <= maxGap.Milliseconds() {
			g := float32(dt) / 1000
			const a = 1.0 / 8
			if p.gapN == 0 {
				p.gapMean, p.gapSq = g, g*g
			} else {
				p.gapMean += a * (g - p.gapMean)
				p.gapSq += a * (g*g - p.gapSq)
			}
			if p.gapN < math.MaxUint16 {
				p.gapN++
			}
		}
	}
	if o.at > p.last {
		p.last = o.at
	}
	var inc [numCounters]float32
	inc[cReq] = 1
	switch o.kind {
	case kindPage:
		inc[cPages] = 1
		if !o.referred {
			inc[cNoRefPages] = 1
		}
		if o.path != "/" {
			if _, ok := ps.advertised[pathHash(o.path)]; !ok {
				inc[cUnadv] = 1
			}
		}
		p.lastPage = o.at
		p.addPath(o.path)
	case kindAsset:
		inc[cAssets] = 1
	case kindForm:
		inc[cForms] = 1
		if p.lastPage == 0 || o.at-p.lastPage > orphanWindow.Milliseconds() {
			inc[cOrphan] = 1
		}
		p.addPath(o.path)
	case kindRobots:
		p.robots = true
	}
	if o.noCookie {
		inc[cNoCookie] = 1
	}
	if o.session {
		p.sessions = true
	}
	if o.status >= 400 && o.status < 500 {
		inc[c4xx] = 1
	}
	if o.referred {
		inc[cReferred] = 1
	}
	for i, v := range inc {
		p.short[i] += v
		p.long[i] += v
	}
	v := ps.evaluate(p)
	if v.Score > p.verdict.Score || v.Signals != p.verdict.Signals {
		p.verdict = v
	}
	return v
}

func (p *profile) addPath(path string) {
	b := pathHash(path) & 15
	if p.paths[b] == math.MaxUint16 {
		for i := range p.paths {
			p.paths[i] /= 2
		}
	}
	p.paths[b]++
}

// entropy returns the path entropy in bits (0-4) and the paths counted.
func (p *profile) entropy() (float64, int) {
	n := 0
	for _, c := range p.paths {
		n += int(c)
	}
	if n == 0 {
		return 0, 0
	}
	h := 0.0
	for _, c := range p.paths {
		if c > 0 {
			q := float64(c) / float64(n)
			h -= q * math.Log2(q)
		}
	}
	return h, n
}

// evaluate scores p on each horizon and returns the higher verdict.
func (ps *profiles) evaluate(p *profile) profileVerdict {
	a := ps.score(p, &p.short)
	if b := ps.score(p, &p.long); b.Score > a.Score {
		return b
	}
	return a
}

// score scores one horizon's counters.
func (ps *profiles) score(p *profile, c *[numCounters]float32) profileVerdict {
	n := float64(c[cReq])
	if n < float64(ps.cfg.MinRequests) {
		return profileVerdict{}
	}
	share := func(i int) float64 { return float64(c[i]) / n }
	var bits uint16
	set := func(s int, ok bool) {
		if ok {
			bits |= 1 << s
		}
	}
	pages := float64(c[cPages])
	// Browsers load CSS, JS and images with their pages.
	set(sigNoAssets, share(cAssets) < 0.05 && pages+float64(c[cForms]) >= 0.8*n)
	set(sigOrphanForm, share(cOrphan) >= 0.3)
	if p.gapN >= 10 && p.gapMean >= 1 {
		v := float64(p.gapSq) - float64(p.gapMean)*float64(p.gapMean)
		cv := math.Sqrt(max(v, 0)) / float64(p.gapMean)
		set(sigRegular, cv < 0.35)
	}
	if h, k := p.entropy(); k >= ps.cfg.MinRequests {
		set(sigLowEntropy, h < 1.0)
	}
	set(sigNoReferer, pages >= 10 && float64(c[cNoRefPages]) >= 0.9*pages)
	set(sigNoCookie, p.sessions && share(cNoCookie) >= 0.9)
	set(sigUnadvertised, pages >= 10 && float64(c[cUnadv]) >= 0.8*pages)
	set(sig4xx, share(c4xx) >= 0.3)
	set(sigRobots, p.robots)
	score := 0.0
	for s := range numSignals {
		if bits&(1<<s) != 0 {
			score += signalWeights[s]
		}
	}
	// NAT guard: an asset-heavy burst with referers is a browser (or many
	// behind one address), whatever its rate or timing.
	if humanLike(float64(c[cAssets]), float64(c[cReferred]), n) {
		score *= 0.25
	}
	return profileVerdict{Score: uint16(min(math.Round(score*100), math.MaxUint16)), Signals: bits}
}

// humanLike: mostly assets, nearly all with a referer.
func humanLike(assets, referred, n float64) bool {
	return n > 0 && assets >= 0.6*n && referred >= 0.8*n
}

// profileReasons appends "profile:<signal>" reasons of bits to rs.
func profileReasons(rs []string, bits uint16) []string {
	for s := range numSignals {
		if bits&(1<<s) != 0 {
			rs = append(rs, "profile:"+signalNames[s])
		}
	}
	return rs
}

// Profile encoding (attribute "profiles", type B): a version byte, the
// count, then per profile: key, last (uvarint ms), lastPage delta before
// last (uvarint, 0: none), a mask of the non-zero counters of both
// horizons and their float32 bits, gap mean and square as float32 bits, gapN, flags, the 16 path
// counts. ~70-120 bytes per profile; at most ~240.
const profileVersion = 1

// profileChunk: profiles per item, 1,500 x 250 bytes stays under
// DynamoDB's 400 KB.
const profileChunk = 1500

func appendProfiles(dst []byte, ps []profile) []byte {
	dst = append(dst, profileVersion)
	dst = binary.AppendUvarint(dst, uint64(len(ps)))
	for i := range ps {
		p := &ps[i]
		dst = binary.AppendUvarint(dst, uint64(len(p.key)))
		dst = append(dst, p.key...)
		dst = binary.AppendUvarint(dst, uint64(max(p.last, 0)))
		var lp uint64
		if p.lastPage > 0 && p.lastPage <= p.last {
			lp = uint64(p.last-p.lastPage) + 1
		}
		dst = binary.AppendUvarint(dst, lp)
		// Counters exactly (a restored profile continues bit for bit):
		// a mask of the non-zero ones, then their float32 bits.
		var all [2 * numCounters]float32
		copy(all[:], p.short[:])
		copy(all[numCounters:], p.long[:])
		var mask uint64
		for i, v := range all {
			if v != 0 {
				mask |= 1 << i
			}
		}
		dst = binary.AppendUvarint(dst, mask)
		for _, v := range all {
			if v != 0 {
				dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
			}
		}
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(p.gapMean))
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(p.gapSq))
		dst = binary.AppendUvarint(dst, uint64(p.gapN))
		var flags byte
		if p.robots {
			flags |= 1
		}
		if p.sessions {
			flags |= 2
		}
		dst = append(dst, flags)
		for _, c := range p.paths {
			dst = binary.AppendUvarint(dst, uint64(c))
		}
		dst = binary.AppendUvarint(dst, uint64(p.verdict.Score))
		dst = binary.AppendUvarint(dst, uint64(p.verdict.Signals))
	}
	return dst
}

func decodeProfiles(b []byte, f func(p *profile)) error {
	if len(b) == 0 || b[0] != profileVersion {
		return fmt.Errorf("%w: profile version", errBadState)
	}
	b = b[1:]
	n, b, err := uvarint(b)
	if err != nil {
		return err
	}
	next := func(limit uint64) (uint64, error) {
		var v uint64
		v, b, err = uvarint(b)
		if err == nil && v > limit {
			err = fmt.Errorf("%w: profile value range", errBadState)
		}
		return v, err
	}
	for range n {
		var p profile
		l, err := next(maxIPLen + 128)
		if err != nil {
			return err
		}
		if uint64(len(b)) < l {
			return fmt.Errorf("%w: profile key", errBadState)
		}
		p.key = string(b[:l])
		b = b[l:]
		last, err := next(math.MaxInt64)
		if err != nil {
			return err
		}
		p.last = int64(last)
		lp, err := next(last + 1)
		if err != nil {
			return err
		}
		if lp > 0 {
			p.lastPage = p.last - int64(lp-1)
		}
		mask, err := next(1<<(2*numCounters) - 1)
		if err != nil {
			return err
		}
		for i := range 2 * numCounters {
			if mask&(1<<i) == 0 {
				continue
			}
			if len(b) < 4 {
				return fmt.Errorf("%w: truncated profile", errBadState)
			}
			v := math.Float32frombits(binary.LittleEndian.Uint32(b))
			b = b[4:]
			if !(v >= 0) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("%w: profile counter", errBadState)
			}
			if i < numCounters {
				p.short[i] = v
			} else {
				p.long[i-numCounters] = v
			}
		}
		if len(b) < 8 {
			return fmt.Errorf("%w: truncated profile", errBadState)
		}
		p.gapMean = math.Float32frombits(binary.LittleEndian.Uint32(b))
		p.gapSq = math.Float32frombits(binary.LittleEndian.Uint32(b[4:]))
		b = b[8:]
		if !(p.gapMean >= 0 && p.gapSq >= 0) || math.IsInf(float64(p.gapMean), 0) || math.IsInf(float64(p.gapSq), 0) {
			return fmt.Errorf("%w: profile gaps", errBadState)
		}
		gn, err := next(math.MaxUint16)
		if err != nil {
			return err
		}
		p.gapN = uint16(gn)
		if len(b) < 1 {
			return fmt.Errorf("%w: truncated profile", errBadState)
		}
		p.robots, p.sessions = b[0]&1 != 0, b[0]&2 != 0
		b = b[1:]
		for i := range p.paths {
			v, err := next(math.MaxUint16)
			if err != nil {
				return err
			}
			p.paths[i] = uint16(v)
		}
		sc, err := next(math.MaxUint16)
		if err != nil {
			return err
		}
		sg, err := next(1<<numSignals - 1)
		if err != nil {
			return err
		}
		p.verdict = profileVerdict{Score: uint16(sc), Signals: uint16(sg)}
		f(&p)
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: trailing profile bytes", errBadState)
	}
	return nil
}

// load adds a decoded profile (restore); full stores keep the newest.
func (ps *profiles) load(p *profile) {
	if _, dup := ps.index[p.key]; dup {
		return
	}
	if len(ps.list) >= ps.cfg.MaxIPs {
		ps.evict(max(1, ps.cfg.MaxIPs/10))
	}
	ps.index[p.key] = int32(len(ps.list))
	ps.list = append(ps.list, *p)
}

// sortedForPersist orders profiles newest first, so that a store that
// shrank (max_ips lowered) restores the most recent ones.
func (ps *profiles) sortedForPersist() []profile {
	out := slices.Clone(ps.list)
	slices.SortFunc(out, func(a, b profile) int {
		if c := cmp.Compare(b.last, a.last); c != 0 {
			return c
		}
		return cmp.Compare(a.key, b.key)
	})
	return out
}
