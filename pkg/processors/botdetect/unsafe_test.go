package botdetect

import (
	"unsafe"

	"github.com/x-way/crawlerdetect"
)

// unsafeString aliases b, as a decoder's strings alias a batch payload.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

var crawlerdetectIsCrawler = crawlerdetect.IsCrawler
