package jsonl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
)

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("jsonl: file closed")

// file is an append-only, fsync'd JSON-lines file shared by the writers.
type file struct {
	mu   sync.Mutex
	f    *os.File
	size int64
	path string
}

func openFile(path string) (*file, error) {
	if path == "" {
		return nil, errors.New("jsonl: empty path")
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("jsonl: open: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("jsonl: stat: %w", err)
	}
	return &file{f: f, size: fi.Size(), path: path}, nil
}

// append writes b (whole lines) and fsyncs. On failure it truncates the
// file back to where it was, so a reader never sees a partial line.
func (f *file) append(ctx context.Context, b []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.f == nil {
		return ErrClosed
	}
	_, err := f.f.Write(b)
	if err == nil {
		err = f.f.Sync()
	}
	if err != nil {
		if terr := f.f.Truncate(f.size); terr != nil {
			err = errors.Join(err, fmt.Errorf("truncate after failed write: %w", terr))
		}
		return fmt.Errorf("jsonl: write %s: %w", f.path, err)
	}
	f.size += int64(len(b))
	return nil
}

func (f *file) close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.f == nil {
		return nil
	}
	err := f.f.Close()
	f.f = nil
	if err != nil {
		return fmt.Errorf("jsonl: close %s: %w", f.path, err)
	}
	return nil
}
