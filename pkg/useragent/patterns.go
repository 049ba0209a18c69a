package useragent

import (
	"fmt"
	"regexp"
	"strings"
)

// Patterns is a list of User-Agent patterns supplied by configuration
// (allow and deny lists). A pattern is a case-insensitive substring, or a
// Go regexp when written "re:<regexp>". The zero value matches nothing.
type Patterns struct {
	list []pattern
}

type pattern struct {
	sub string // lower-case substring, when re is nil
	re  *regexp.Regexp
}

// CompilePatterns compiles pats. An invalid pattern returns a
// *PatternError naming its index.
func CompilePatterns(pats []string) (Patterns, error) {
	out := Patterns{list: make([]pattern, 0, len(pats))}
	for i, p := range pats {
		if expr, ok := strings.CutPrefix(p, "re:"); ok {
			re, err := regexp.Compile(expr)
			if err != nil {
				return Patterns{}, &PatternError{Index: i, Pattern: p, Reason: fmt.Sprintf("bad regexp: %v", err)}
			}
			out.list = append(out.list, pattern{re: re})
			continue
		}
		if p == "" {
			return Patterns{}, &PatternError{Index: i, Pattern: p, Reason: "must not be empty"}
		}
		out.list = append(out.list, pattern{sub: strings.ToLower(p)})
	}
	return out, nil
}

// Len returns the number of patterns.
func (p Patterns) Len() int { return len(p.list) }

// Find reports whether a pattern matches ua and names the first that
// does: the word around the match (e.g. "HeadlessChrome" for a match of
// "headless"); the name may be "" when the match holds no word byte.
func (p Patterns) Find(ua string) (name string, ok bool) {
	if len(p.list) == 0 {
		return "", false
	}
	lower := strings.ToLower(ua)
	for _, r := range p.list {
		if r.re != nil {
			if loc := r.re.FindStringIndex(ua); loc != nil {
				return nameAt(ua, loc[0], loc[1]), true
			}
			continue
		}
		if i := strings.Index(lower, r.sub); i >= 0 {
			// ToLower may change byte lengths for non-ASCII text; then the
			// offsets would not map back, so name the whole UA.
			if len(lower) != len(ua) {
				return nameAt(ua, 0, len(ua)), true
			}
			return nameAt(ua, i, i+len(r.sub)), true
		}
	}
	return "", false
}

func nameAt(ua string, start, end int) string { return tokenAt(ua, start, end) }
