package main

import (
	"context"
	"errors"
	"io"
)

func runSetup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return errors.New("setup: not wired yet")
}
