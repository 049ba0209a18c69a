package orderflood

import (
	"os"

	"go.uber.org/zap"
)

// testLogger is the test leases' logger: OF_DEBUG=1 prints their debug
// lines (frontiers written, evaluations).
var testLogger = zap.NewNop()

func init() {
	if os.Getenv("OF_DEBUG") != "" {
		testLogger = zap.NewExample()
	}
}
