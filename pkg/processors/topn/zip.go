package topn

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"sync"
)

// zipped suffixes the attribute of a partial's rows stored deflated (B):
// "ips_z" holds what "ips" held as text. A partial of 250 candidates is
// 10-20 KB of text and DynamoDB bills a write unit per KB, rewritten on
// every flush while its window is open; deflated it is 3-4 times smaller.
// Partials written as text (before) still decode.
const zipped = "_z"

// maxInflated bounds a decompressed row list (a partial item is at most
// 400 KB, its text a few times that).
const maxInflated = 8 << 20

var (
	zwPool = sync.Pool{New: func() any {
		w, _ := flate.NewWriter(nil, flate.BestSpeed) // level is valid: no error
		return w
	}}
	zrPool sync.Pool
)

func deflate(s string) []byte {
	var buf bytes.Buffer
	w := zwPool.Get().(*flate.Writer)
	w.Reset(&buf)
	_, _ = io.WriteString(w, s) // a bytes.Buffer does not fail
	_ = w.Close()
	zwPool.Put(w)
	return buf.Bytes()
}

func inflate(b []byte) (string, error) {
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
		return "", fmt.Errorf("inflate rows: %w", err)
	}
	if n > maxInflated {
		return "", fmt.Errorf("inflate rows: more than %d bytes", maxInflated)
	}
	return out.String(), nil
}
