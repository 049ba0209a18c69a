package engine

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/shardwatch/shardwatch/pkg/processors"
)

// AuditLog appends the position of every processed record to a file, one
// line "shard seq subseq worker unix-millis" (the time the batch was
// written), synced before the batch is checkpointed.
// It is a debugging and testing aid: it proves which records were
// processed, and how often, across a fleet that shares the file system.
type AuditLog struct {
	mu sync.Mutex
	f  *os.File
	w  *bufio.Writer
}

// OpenAuditLog opens (appends to) path.
func OpenAuditLog(path string) (*AuditLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return &AuditLog{f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

// Write records raws as processed by worker and syncs the file.
func (a *AuditLog) Write(_ context.Context, raws []processors.Raw, worker string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var buf []byte
	ms := time.Now().UnixMilli()
	for i := range raws {
		m := &raws[i].Meta
		buf = buf[:0]
		buf = append(buf, m.ShardID...)
		buf = append(buf, ' ')
		buf = append(buf, m.SequenceNumber...)
		buf = append(buf, ' ')
		buf = strconv.AppendInt(buf, m.SubSequence, 10)
		buf = append(buf, ' ')
		buf = append(buf, worker...)
		buf = append(buf, ' ')
		buf = strconv.AppendInt(buf, ms, 10)
		buf = append(buf, '\n')
		if _, err := a.w.Write(buf); err != nil {
			return fmt.Errorf("audit log: %w", err)
		}
	}
	if err := a.w.Flush(); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	if err := a.f.Sync(); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	return nil
}

// Close closes the file.
func (a *AuditLog) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.w.Flush(); err != nil {
		a.f.Close()
		return err
	}
	return a.f.Close()
}
