package config

import (
	"io"
	"path/filepath"
	"testing"
)

// The example shipped in deploy/ must stay a valid configuration.
func TestExampleConfigLoads(t *testing.T) {
	p := filepath.Join("..", "..", "deploy", "consumer.example.yaml")
	c, err := Load([]string{"--config", p}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// Which processors it lists is checked where they are built
	// (pkg/consumer TestExampleConfigBuildsProcessors) and deployed
	// (deploycheck: the template's default must equal it).
	if len(c.ProcessorList()) == 0 {
		t.Error("the example lists no processors")
	}
}
