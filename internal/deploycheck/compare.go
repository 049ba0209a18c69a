package deploycheck

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Agree compares an evaluated CloudFormation value (PascalCase property
// names, Wild for deploy-time values) with the same thing written as CLI
// JSON (camelCase member names), field by field. Object keys are matched
// case-insensitively (ContainerDefinitions = containerDefinitions; map keys
// such as log options are the same on both sides anyway); a key present on
// one side only is a difference unless allowed[path] explains it. It
// returns one line per difference.
func Agree(tmpl, concrete any, allowed map[string]string) []string {
	var diffs []string
	agree(tmpl, concrete, "$", allowed, &diffs)
	return diffs
}

func agree(t, c any, path string, allowed map[string]string, diffs *[]string) {
	if _, ok := allowed[path]; ok {
		return
	}
	switch tv := t.(type) {
	case map[string]any:
		cv, ok := c.(map[string]any)
		if !ok {
			*diffs = append(*diffs, fmt.Sprintf("%s: template has an object, JSON has %T", path, c))
			return
		}
		ckeys := map[string]string{}
		for k := range cv {
			ckeys[strings.ToLower(k)] = k
		}
		for _, k := range sortedKeys(tv) {
			p := path + "." + lowerFirst(k)
			ck, ok := ckeys[strings.ToLower(k)]
			if !ok {
				if _, ok := allowed[p]; !ok {
					*diffs = append(*diffs, p+": only in the template")
				}
				continue
			}
			delete(ckeys, strings.ToLower(k))
			agree(tv[k], cv[ck], p, allowed, diffs)
		}
		rest := make([]string, 0, len(ckeys))
		for _, k := range ckeys {
			rest = append(rest, k)
		}
		slices.Sort(rest)
		for _, k := range rest {
			p := path + "." + k
			if _, ok := allowed[p]; !ok {
				*diffs = append(*diffs, p+": only in the JSON")
			}
		}
	case []any:
		cv, ok := c.([]any)
		if !ok {
			*diffs = append(*diffs, fmt.Sprintf("%s: template has a list, JSON has %T", path, c))
			return
		}
		if len(tv) != len(cv) {
			*diffs = append(*diffs, fmt.Sprintf("%s: template has %d elements, JSON %d", path, len(tv), len(cv)))
			return
		}
		for i := range tv {
			agree(tv[i], cv[i], fmt.Sprintf("%s[%d]", path, i), allowed, diffs)
		}
	default:
		ts, cs := scalarString(t), jsonScalar(c)
		if !Matches(ts, cs) {
			*diffs = append(*diffs, fmt.Sprintf("%s: template %q, JSON %q", path, strings.ReplaceAll(ts, Wild, "*"), cs))
		}
	}
}

func jsonScalar(v any) string {
	switch x := v.(type) {
	case json.Number:
		return x.String()
	case map[string]any, []any:
		return fmt.Sprintf("<%T>", v)
	default:
		return scalarString(v)
	}
}
