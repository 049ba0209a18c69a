package records

import (
	"bytes"
	"runtime"
	"syscall"
	"testing"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"
)

var tmpLine = []byte(`{"bytes":30577,"event":"add_to_cart","host":"www.zanbil.ir","ip":"54.36.149.41","method":"GET","path":"/filter/27|13%20%D9%85%DA%AF%D8%A7%D9%BE%DB%8C%DA%A9%D8%B3%D9%84,27|%DA%A9%D9%85%D8%AA%D8%B1%20%D8%A7%D8%B2%205%20%D9%85%DA%AF%D8%A7%D9%BE%DB%8C%DA%A9%D8%B3%D9%84,p53","referer":"","session_id":"s-0","status":200,"timestamp":"2019-01-22T03:56:14.000+03:30","user_agent":"Mozilla/5.0 (compatible; AhrefsBot/6.1; +http://ahrefs.com/robot/)"}`)

type tmpHit struct {
	IP        string `json:"ip"`
	UserAgent string `json:"user_agent"`
	Referer   string `json:"referer"`
	SessionID string `json:"session_id"`
	Timestamp string `json:"timestamp"`
	Path      string `json:"path"`
	Status    int    `json:"status"`
	Bytes     int64  `json:"bytes"`
	Host      string `json:"host"`
	Event     string `json:"event"`
	Method    string `json:"method"`
}

func threadCPU() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(1, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func cpuRun(b *testing.B, name string, fn func()) {
	b.Run(name, func(b *testing.B) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		c0 := threadCPU()
		for b.Loop() {
			fn()
		}
		b.ReportMetric(float64(threadCPU()-c0)/float64(b.N), "thread-cpu-ns/op")
	})
}

func BenchmarkTmp2(b *testing.B) {
	var d ClickstreamDecoder
	var r Record
	var cd CombinedDecoder
	zl := []byte(`54.36.149.41 - - [22/Jan/2019:03:56:14 +0330] "GET /filter/27|13%20%D9%85%DA%AF%D8%A7%D9%BE%DB%8C%DA%A9%D8%B3%D9%84,27|%DA%A9%D9%85%D8%AA%D8%B1%20%D8%A7%D8%B2%205%20%D9%85%DA%AF%D8%A7%D9%BE%DB%8C%DA%A9%D8%B3%D9%84,p53 HTTP/1.1" 200 30577 "-" "Mozilla/5.0 (compatible; AhrefsBot/6.1; +http://ahrefs.com/robot/)" "-"`)
	cpuRun(b, "utf8", func() { utf8.Valid(tmpLine) })
	cpuRun(b, "scan", func() {
		var it objIter
		it.init(tmpLine)
		for it.next() {
		}
	})
	cpuRun(b, "decode", func() { d.Decode(tmpLine, &r) })
	cpuRun(b, "goccy", func() {
		var h tmpHit
		gojson.Unmarshal(tmpLine, &h)
	})
	cpuRun(b, "combined", func() { cd.Decode(zl, &r) })
	cpuRun(b, "string", func() { r.Path = string(zl) })
}

func BenchmarkTmp(b *testing.B) {
	b.Run("utf8", func(b *testing.B) {
		for b.Loop() {
			if !utf8.Valid(tmpLine) {
				b.Fatal()
			}
		}
	})
	b.Run("scan", func(b *testing.B) {
		for b.Loop() {
			var it objIter
			it.init(tmpLine)
			for it.next() {
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		var d ClickstreamDecoder
		var r Record
		for b.Loop() {
			d.Decode(tmpLine, &r)
		}
	})
	b.Run("goccy", func(b *testing.B) {
		for b.Loop() {
			var h tmpHit
			gojson.Unmarshal(tmpLine, &h)
		}
	})
}

var plainTab = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return
}()

func scanTable(b []byte) int {
	n := 0
	for i := 0; i < len(b); i++ {
		if !plainTab[b[i]] {
			n++
		}
	}
	return n
}


func BenchmarkTmp3(b *testing.B) {
	cpuRun(b, "table", func() { scanTable(tmpLine) })
	cpuRun(b, "swar", func() { hasControl(tmpLine) })
	cpuRun(b, "indexbyte", func() { bytes.IndexByte(tmpLine, 0) })
	cpuRun(b, "utf8", func() { utf8.Valid(tmpLine) })
}
