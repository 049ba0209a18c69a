package useragent

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"sync"
	"unicode"

	"github.com/x-way/crawlerdetect"
)

// CrawlerMatcher gives exactly crawlerdetect's verdict, plus the matched
// text, at a fraction of its cost. Get the process-wide instance with
// CrawlerDetect; it is safe for concurrent use.
//
// crawlerdetect (v0.2.31) answers IsCrawler(ua) as
//
//	crawlers.MatchString(exclusions.ReplaceAllString(strings.TrimSpace(ua), ""))
//
// where both regexps are one (?i) alternation of every pattern (1,452
// crawler and 53 exclusion patterns). Go's regexp runs such an
// alternation at 60-300 us per UA. The matcher reproduces the same two
// steps, exactly:
//
//  1. Exclusions: at each byte, only the exclusion patterns that can start
//     with that byte (and whose literal prefix is there) are tried, each as
//     an anchored regexp. The first pattern in list order that matches
//     wins and its match is removed: the leftmost-first semantics of the
//     joined alternation.
//  2. Crawlers: each pattern's necessary literals (strings at least one of
//     which every match contains, derived from its parsed syntax tree) go
//     into a trigram index. One pass over the upper-cased step-1 result
//     finds the patterns whose literals occur; only those candidates run
//     their own regexp. No candidate means no pattern can match.
//
// The fast path needs ASCII input (so case folding is A-Z/a-z only).
// Anything else takes the slow path: the library's own two regexps,
// rebuilt from its pattern lists. Tests assert equal verdicts with
// crawlerdetect on every UA of the shared data and under fuzzing.
type CrawlerMatcher struct {
	// fast is nil when the pattern lists could not be analysed; then every
	// UA takes the slow path.
	fast *fastMatcher
	// exclusions and crawlers are the library's regexps (slow path), nil
	// when the pattern lists could not be read at all.
	exclusions, crawlers *regexp.Regexp
}

type fastMatcher struct {
	excl      []exclPattern
	exclFirst [128][]int32 // exclusion patterns that can start with a byte

	pats   []*regexp.Regexp // one per crawler pattern, list order
	always []int32          // patterns without a usable literal: always run
	lits   []string         // necessary literals, upper case
	litPat [][]int32        // literal -> patterns that need it
	short  []int32          // literals shorter than 3 bytes
	shortB [][]byte         // their bytes, parallel to short
	tri    trigramIndex     // literals of 3+ bytes by their first 3 bytes

	scratch sync.Pool // *matchScratch
}

type exclPattern struct {
	re     *regexp.Regexp // ^(?i:pattern)
	prefix string         // upper-case literal prefix every match starts with
}

type matchScratch struct {
	stripped, upper []byte
	cand            []int32
}

// errPatterns means crawlerdetect's pattern lists could not be read.
var errPatterns = errors.New("crawlerdetect pattern lists unavailable")

// libraryPatterns reads the default pattern lists from a crawlerdetect
// instance. They are unexported; reading them (never writing) keeps this
// package in lock-step with whatever crawlerdetect version go.mod pins
// instead of a copy that drifts. A layout change makes this fail, and the
// detector then calls crawlerdetect directly (correct, slow);
// TestFastPathActive catches it on upgrade.
func libraryPatterns() (crawlers, exclusions []string, err error) {
	v := reflect.ValueOf(crawlerdetect.New()).Elem()
	read := func(name string) ([]string, error) {
		f := v.FieldByName(name)
		if !f.IsValid() || f.Kind() != reflect.Slice || f.Type().Elem().Kind() != reflect.String || f.Len() == 0 {
			return nil, fmt.Errorf("field %s: %w", name, errPatterns)
		}
		out := make([]string, f.Len())
		for i := range out {
			out[i] = f.Index(i).String()
		}
		return out, nil
	}
	if crawlers, err = read("crawlers"); err != nil {
		return nil, nil, err
	}
	if exclusions, err = read("exclusions"); err != nil {
		return nil, nil, err
	}
	return crawlers, exclusions, nil
}

// CrawlerDetect returns the process-wide matcher of crawlerdetect's
// default patterns (built on first use, ~100 ms).
func CrawlerDetect() *CrawlerMatcher { return sharedMatcher() }

// FastPath reports whether the exact fast matcher is in use (false means
// every User-Agent takes crawlerdetect's own 60-300 us regexps).
func (m *CrawlerMatcher) FastPath() bool { return m.fast != nil && m.crawlers != nil }

// sharedMatcher is built once per process: it depends only on the
// library's immutable pattern lists and takes ~100 ms to compile.
var sharedMatcher = sync.OnceValue(func() *CrawlerMatcher {
	crawlers, exclusions, err := libraryPatterns()
	if err != nil {
		return &CrawlerMatcher{}
	}
	return newUAMatcher(crawlers, exclusions)
})

func newUAMatcher(crawlers, exclusions []string) *CrawlerMatcher {
	m := &CrawlerMatcher{}
	// Same construction as crawlerdetect's compileCrawlers/compileExclusions.
	cr, err1 := regexp.Compile("(?i)(" + strings.Join(crawlers, "|") + ")")
	ex, err2 := regexp.Compile("(?i)(" + strings.Join(exclusions, "|") + ")")
	if err1 != nil || err2 != nil {
		return m
	}
	m.crawlers, m.exclusions = cr, ex
	if f, err := newFastMatcher(crawlers, exclusions); err == nil {
		m.fast = f
	}
	return m
}

// Match reports whether ua is a crawler by crawlerdetect's rules and, if
// so, the text its leftmost pattern matched plus the surrounding token
// (e.g. "AhrefsBot" for a match of "Ahrefs").
func (m *CrawlerMatcher) Match(ua string) (bool, string) {
	bot, name := m.match(ua)
	if bot && name == "" {
		name = uaToken(ua)
	}
	return bot, name
}

func (m *CrawlerMatcher) match(ua string) (bool, string) {
	if m.fast != nil && isASCII(ua) {
		return m.fast.match(ua)
	}
	if m.crawlers == nil {
		if crawlerdetect.IsCrawler(ua) {
			return true, uaToken(ua)
		}
		return false, ""
	}
	s := m.exclusions.ReplaceAllString(strings.TrimSpace(ua), "")
	loc := m.crawlers.FindStringIndex(s)
	if loc == nil {
		return false, ""
	}
	return true, tokenAt(s, loc[0], loc[1])
}

func newFastMatcher(crawlers, exclusions []string) (*fastMatcher, error) {
	f := &fastMatcher{}
	f.scratch.New = func() any { return &matchScratch{} }
	for i, p := range exclusions {
		re, err := syntax.Parse("(?i:"+p+")", syntax.Perl)
		if err != nil {
			return nil, fmt.Errorf("exclusion %d: %w", i, err)
		}
		first, nullable, ok := firstBytes(re)
		if !ok || nullable {
			// An assertion or an empty match would make anchored,
			// per-pattern matching differ from the joined alternation.
			return nil, fmt.Errorf("exclusion %d %q: unsupported shape", i, p)
		}
		anchored, err := regexp.Compile("^(?i:" + p + ")")
		if err != nil {
			return nil, fmt.Errorf("exclusion %d: %w", i, err)
		}
		f.excl = append(f.excl, exclPattern{re: anchored, prefix: literalPrefix(re)})
		for b := range first {
			if first[b] {
				f.exclFirst[b] = append(f.exclFirst[b], int32(i))
			}
		}
	}
	litID := map[string]int32{}
	for i, p := range crawlers {
		re, err := regexp.Compile("(?i:" + p + ")")
		if err != nil {
			return nil, fmt.Errorf("crawler %d: %w", i, err)
		}
		f.pats = append(f.pats, re)
		tree, err := syntax.Parse("(?i:"+p+")", syntax.Perl)
		if err != nil {
			return nil, fmt.Errorf("crawler %d: %w", i, err)
		}
		req := requiredLiterals(tree)
		if req == nil {
			f.always = append(f.always, int32(i))
			continue
		}
		for _, l := range req {
			id, ok := litID[l]
			if !ok {
				id = int32(len(f.lits))
				litID[l] = id
				f.lits = append(f.lits, l)
				f.litPat = append(f.litPat, nil)
				if len(l) < 3 {
					f.short = append(f.short, id)
					f.shortB = append(f.shortB, []byte(l))
				}
			}
			f.litPat[id] = append(f.litPat[id], int32(i))
		}
	}
	f.tri = newTrigramIndex(f.lits)
	return f, nil
}

func (f *fastMatcher) match(ua string) (bool, string) {
	sc := f.scratch.Get().(*matchScratch)
	defer f.scratch.Put(sc)

	s := f.strip(strings.TrimSpace(ua), sc)
	up := append(sc.upper[:0], s...)
	for i, c := range up {
		if 'a' <= c && c <= 'z' {
			up[i] = c - 'a' + 'A'
		}
	}
	sc.upper = up

	cand := append(sc.cand[:0], f.always...)
	for i, id := range f.short {
		if bytes.Contains(up, f.shortB[i]) {
			cand = append(cand, f.litPat[id]...)
		}
	}
	cand = f.tri.scan(up, f.lits, f.litPat, cand)
	sc.cand = cand
	if len(cand) == 0 {
		return false, ""
	}
	slices.Sort(cand)
	cand = slices.Compact(cand)
	best, bestEnd := -1, -1
	for _, p := range cand {
		loc := f.pats[p].FindIndex(s)
		if loc != nil && (best < 0 || loc[0] < best) {
			best, bestEnd = loc[0], loc[1]
		}
	}
	if best < 0 {
		return false, ""
	}
	return true, tokenAt(string(s), best, bestEnd)
}

// strip removes exclusion matches from s (ASCII) the way
// exclusions.ReplaceAllString(s, "") does. The result lives in sc.
func (f *fastMatcher) strip(s string, sc *matchScratch) []byte {
	out := sc.stripped[:0]
	for i := 0; i < len(s); {
		c := s[i]
		n := 0
		for _, k := range f.exclFirst[c&0x7f] {
			e := &f.excl[k]
			if !hasUpperPrefix(s[i:], e.prefix) {
				continue
			}
			if loc := e.re.FindStringIndex(s[i:]); loc != nil {
				n = loc[1]
				break
			}
		}
		if n > 0 {
			i += n
			continue
		}
		out = append(out, c)
		i++
	}
	sc.stripped = out
	return out
}

// hasUpperPrefix reports whether s starts with prefix (upper case),
// ignoring ASCII case.
func hasUpperPrefix(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// trigramIndex finds which literals (3+ bytes) occur in a text in one
// pass: a hash of each position's next 3 bytes selects the few literals
// starting with them, which are then compared.
type trigramIndex struct {
	off []int32 // bucket b holds ids[off[b]:off[b+1]]
	ids []int32
}

const trigramBits = 12

func trigramHash(a, b, c byte) uint32 {
	return ((uint32(a)<<16 | uint32(b)<<8 | uint32(c)) * 2654435761) >> (32 - trigramBits)
}

func newTrigramIndex(lits []string) trigramIndex {
	buckets := make([][]int32, 1<<trigramBits)
	for id, l := range lits {
		if len(l) >= 3 {
			h := trigramHash(l[0], l[1], l[2])
			buckets[h] = append(buckets[h], int32(id))
		}
	}
	t := trigramIndex{off: make([]int32, 1, len(buckets)+1)}
	for _, b := range buckets {
		t.ids = append(t.ids, b...)
		t.off = append(t.off, int32(len(t.ids)))
	}
	return t
}

// scan appends to cand the patterns of every literal found in up.
func (t *trigramIndex) scan(up []byte, lits []string, litPat [][]int32, cand []int32) []int32 {
	for i := 0; i+3 <= len(up); i++ {
		h := trigramHash(up[i], up[i+1], up[i+2])
		for _, id := range t.ids[t.off[h]:t.off[h+1]] {
			l := lits[id]
			if len(up)-i >= len(l) && string(up[i:i+len(l)]) == l {
				cand = append(cand, litPat[id]...)
			}
		}
	}
	return cand
}

// tokenAt names the match s[start:end]: the word (letters, digits, '.',
// '-', '_') around its first word byte, so a match of "Ahrefs" in
// "AhrefsBot/6.1" names "AhrefsBot" and one of "Java/" names "Java"; at
// most 64 bytes.
func tokenAt(s string, start, end int) string {
	i := start
	for i < end && !isTokenByte(s[i]) {
		i++
	}
	if i == end {
		return strings.TrimSpace(s[start:end])
	}
	lo, hi := i, i
	for lo > 0 && isTokenByte(s[lo-1]) {
		lo--
	}
	for hi < len(s) && isTokenByte(s[hi]) {
		hi++
	}
	tok := strings.Trim(s[lo:hi], ".-_")
	if len(tok) > 64 {
		tok = tok[:64]
	}
	return tok
}

func isTokenByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_'
}

// uaToken names a crawler when no match position is known: the first
// product token that is not a generic browser one.
func uaToken(ua string) string {
	for f := range strings.FieldsFuncSeq(ua, func(r rune) bool { return !(r < 0x80 && isTokenByte(byte(r))) }) {
		switch strings.ToLower(f) {
		case "mozilla", "compatible", "5.0", "4.0", "http", "https", "www":
			continue
		}
		if len(f) > 64 {
			f = f[:64]
		}
		return f
	}
	return "unknown"
}

// firstBytes computes the ASCII bytes a match of re can start with,
// whether re can match the empty string, and ok=false if re contains an
// empty-width assertion (which anchored matching could change).
func firstBytes(re *syntax.Regexp) (first [128]bool, nullable, ok bool) {
	switch re.Op {
	case syntax.OpNoMatch:
		return first, false, true
	case syntax.OpEmptyMatch:
		return first, true, true
	case syntax.OpLiteral:
		if len(re.Rune) == 0 {
			return first, true, true
		}
		addFolded(&first, re.Rune[0], re.Flags&syntax.FoldCase != 0)
		return first, false, true
	case syntax.OpCharClass:
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1] && r < 128; r++ {
				first[r] = true
			}
		}
		return first, false, true
	case syntax.OpAnyCharNotNL, syntax.OpAnyChar:
		for i := range first {
			first[i] = re.Op == syntax.OpAnyChar || i != '\n'
		}
		return first, false, true
	case syntax.OpCapture:
		return firstBytes(re.Sub[0])
	case syntax.OpStar, syntax.OpQuest:
		first, _, ok = firstBytes(re.Sub[0])
		return first, true, ok
	case syntax.OpPlus:
		return firstBytes(re.Sub[0])
	case syntax.OpRepeat:
		first, nullable, ok = firstBytes(re.Sub[0])
		return first, nullable || re.Min == 0, ok
	case syntax.OpConcat:
		nullable = true
		for _, sub := range re.Sub {
			f, n, subOK := firstBytes(sub)
			if !subOK {
				return first, false, false
			}
			for i := range f {
				first[i] = first[i] || f[i]
			}
			if !n {
				nullable = false
				break
			}
		}
		return first, nullable, true
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			f, n, subOK := firstBytes(sub)
			if !subOK {
				return first, false, false
			}
			for i := range f {
				first[i] = first[i] || f[i]
			}
			nullable = nullable || n
		}
		return first, nullable, true
	default: // assertions: ^ $ \A \z \b \B
		return first, false, false
	}
}

// addFolded marks r and, when fold is set, every ASCII rune in its case
// folding orbit (which includes e.g. 'k' for the Kelvin sign).
func addFolded(set *[128]bool, r rune, fold bool) {
	if r < 128 {
		set[r] = true
	}
	if !fold {
		return
	}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < 128 {
			set[f] = true
		}
	}
}

// literalPrefix returns the upper-case text every match of re starts
// with ("" if none is known).
func literalPrefix(re *syntax.Regexp) string {
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	var b strings.Builder
	subs := []*syntax.Regexp{re}
	if re.Op == syntax.OpConcat {
		subs = re.Sub
	}
	for _, s := range subs {
		if s.Op != syntax.OpLiteral {
			break
		}
		c, ok := canonLiteral(s)
		if !ok {
			break
		}
		b.WriteString(c)
		if len(s.Rune) != len(c) {
			break
		}
	}
	return b.String()
}

// canonLiteral returns the upper-case ASCII form of a literal node. With
// case folding a non-ASCII rune may still match ASCII (the Kelvin sign
// matches 'k'); a rune with no ASCII form cuts the literal short
// (ok=false if that leaves nothing).
func canonLiteral(re *syntax.Regexp) (string, bool) {
	var b strings.Builder
	for _, r := range re.Rune {
		c, ok := asciiUpper(r, re.Flags&syntax.FoldCase != 0)
		if !ok {
			break
		}
		b.WriteByte(c)
	}
	return b.String(), b.Len() > 0
}

func asciiUpper(r rune, fold bool) (byte, bool) {
	if r < 128 {
		return byte(unicode.ToUpper(r)), true
	}
	if fold {
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < 128 {
				return byte(unicode.ToUpper(f)), true
			}
		}
	}
	return 0, false
}

// Limits of the literal analysis: larger sets are not worth indexing.
const (
	maxExactSet  = 16
	maxClassSize = 4
)

// litInfo describes the strings a syntax node can match, as seen by the
// fast path (ASCII, compared upper-case): exact != nil means every match
// is one of exact; req != nil means every match contains one of req; both
// nil means nothing is known.
type litInfo struct {
	exact, req []string
}

// requiredLiterals returns strings (upper case) one of which every match
// of re contains, or nil if re must always be tried.
func requiredLiterals(re *syntax.Regexp) []string {
	info := analyse(re)
	set := info.req
	if info.exact != nil {
		set = info.exact
	}
	if set == nil || slices.Contains(set, "") {
		return nil
	}
	// A text containing "RUBY/" contains "RUBY": keep only the shorter.
	return slices.DeleteFunc(slices.Clone(set), func(l string) bool {
		return slices.ContainsFunc(set, func(o string) bool { return o != l && strings.Contains(l, o) })
	})
}

func analyse(re *syntax.Regexp) litInfo {
	switch re.Op {
	case syntax.OpLiteral:
		var b strings.Builder
		for _, r := range re.Rune {
			c, ok := asciiUpper(r, re.Flags&syntax.FoldCase != 0)
			if !ok {
				// Cannot occur in ASCII text; claiming nothing is
				// conservative.
				return litInfo{}
			}
			b.WriteByte(c)
		}
		return litInfo{exact: []string{b.String()}}
	case syntax.OpCharClass:
		var set []string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1] && r < 128; r++ {
				s := string(rune(unicode.ToUpper(r)))
				if !slices.Contains(set, s) {
					set = append(set, s)
				}
				if len(set) > maxClassSize {
					return litInfo{}
				}
			}
		}
		if len(set) == 0 {
			return litInfo{}
		}
		return litInfo{exact: set}
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText,
		syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return litInfo{exact: []string{""}}
	case syntax.OpCapture:
		return analyse(re.Sub[0])
	case syntax.OpQuest:
		sub := analyse(re.Sub[0])
		if sub.exact != nil && len(sub.exact) < maxExactSet {
			return litInfo{exact: union(sub.exact, []string{""})}
		}
		return litInfo{}
	case syntax.OpPlus:
		return litInfo{req: asReq(analyse(re.Sub[0]))}
	case syntax.OpRepeat:
		if re.Min == 0 {
			return litInfo{}
		}
		return litInfo{req: asReq(analyse(re.Sub[0]))}
	case syntax.OpConcat:
		return analyseConcat(re.Sub)
	case syntax.OpAlternate:
		infos := make([]litInfo, len(re.Sub))
		allExact := true
		for i, sub := range re.Sub {
			infos[i] = analyse(sub)
			allExact = allExact && infos[i].exact != nil
		}
		if allExact {
			var u []string
			for _, in := range infos {
				u = union(u, in.exact)
			}
			if len(u) <= maxExactSet {
				return litInfo{exact: u}
			}
		}
		var req []string
		for _, in := range infos {
			r := asReq(in)
			if r == nil {
				return litInfo{}
			}
			req = union(req, r)
		}
		return litInfo{req: req}
	default: // Star, AnyChar, NoMatch: nothing is required
		return litInfo{}
	}
}

// analyseConcat joins runs of exact children into longer literals (their
// cross product) and keeps the best requirement found: the set whose
// shortest string is longest.
func analyseConcat(subs []*syntax.Regexp) litInfo {
	cur := []string{""}
	var best []string
	consider := func(set []string) {
		if set == nil || slices.Contains(set, "") {
			return
		}
		if best == nil || minLen(set) > minLen(best) || minLen(set) == minLen(best) && len(set) < len(best) {
			best = set
		}
	}
	exact := true
	for _, sub := range subs {
		in := analyse(sub)
		if in.exact != nil && len(cur)*len(in.exact) <= maxExactSet {
			cur = cross(cur, in.exact)
			continue
		}
		exact = false
		consider(cur)
		cur = []string{""}
		if in.exact != nil {
			if len(in.exact) <= maxExactSet {
				cur = in.exact
			} else {
				consider(in.exact)
			}
			continue
		}
		consider(in.req)
	}
	if exact {
		return litInfo{exact: cur}
	}
	consider(cur)
	return litInfo{req: best}
}

func asReq(in litInfo) []string {
	set := in.req
	if in.exact != nil {
		set = in.exact
	}
	if slices.Contains(set, "") {
		return nil
	}
	return set
}

func cross(a, b []string) []string {
	out := make([]string, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			if s := x + y; !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func minLen(set []string) int {
	m := len(set[0])
	for _, s := range set[1:] {
		m = min(m, len(s))
	}
	return m
}
