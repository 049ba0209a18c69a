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
	if got := len(c.ProcessorList()); got != 7 {
		t.Errorf("example lists %d processors; want 7", got)
	}
}
