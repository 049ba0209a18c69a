package useragent

import "fmt"

// PatternError is an invalid allow or deny pattern.
type PatternError struct {
	Index   int    // position in the list
	Pattern string // as written
	Reason  string // e.g. "must not be empty", "bad regexp: ..."
}

func (e *PatternError) Error() string {
	return fmt.Sprintf("pattern %d %q: %s", e.Index, e.Pattern, e.Reason)
}

// ConfigError is an invalid Config field.
type ConfigError struct {
	Field  string // e.g. "cache_size", "allow[2]"
	Reason string
}

func (e *ConfigError) Error() string { return e.Field + ": " + e.Reason }
