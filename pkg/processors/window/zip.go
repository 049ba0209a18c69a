package window

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"sync"
)

// Zipped suffixes the name of an attribute stored deflated (B): "ips_z"
// holds what "ips" held. DynamoDB bills a write unit per started KB of an
// item, and a partial is rewritten on every flush while its window is
// open: large partials (top-N candidates, bot states) are stored deflated.
// Readers accept both names, so items written before still decode.
const Zipped = "_z"

// maxInflated bounds an inflated attribute (an item is at most 400 KB).
const maxInflated = 8 << 20

var (
	zwPool = sync.Pool{New: func() any {
		w, _ := flate.NewWriter(nil, flate.BestSpeed) // level is valid: no error
		return w
	}}
	zrPool sync.Pool
)

// Deflate compresses s (fast level) for an attribute named with Zipped.
func Deflate(s string) []byte {
	var buf bytes.Buffer
	w := zwPool.Get().(*flate.Writer)
	w.Reset(&buf)
	_, _ = io.WriteString(w, s) // a bytes.Buffer does not fail
	_ = w.Close()
	zwPool.Put(w)
	return buf.Bytes()
}

// Inflate reverses Deflate; it refuses more than 8 MB.
func Inflate(b []byte) (string, error) {
	src := bytes.NewReader(b)
	var r io.ReadCloser
	if v := zrPool.Get(); v != nil {
		r = v.(io.ReadCloser)
		if err := r.(flate.Resetter).Reset(src, nil); err != nil {
			return "", err
		}
	} else {
		r = flate.NewReader(src)
	}
	defer zrPool.Put(r)
	var out bytes.Buffer
	n, err := io.Copy(&out, io.LimitReader(r, maxInflated+1))
	if err != nil {
		return "", fmt.Errorf("inflate: %w", err)
	}
	if n > maxInflated {
		return "", fmt.Errorf("inflate: more than %d bytes", maxInflated)
	}
	return out.String(), nil
}
