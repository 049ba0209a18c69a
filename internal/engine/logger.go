package engine

import (
	"fmt"

	kcllog "github.com/vmware/vmware-go-kcl-v2/logger"
	"go.uber.org/zap"
)

// kclLogger routes the engine's printf-style logs into zap. Fatalf and
// Panicf only log: library code must not end the process (DESIGN.md
// section 3, defect 9).
type kclLogger struct{ l *zap.SugaredLogger }

func newKCLLogger(l *zap.Logger) kcllog.Logger {
	return kclLogger{l: l.With(zap.String("component", "kcl")).WithOptions(zap.AddCallerSkip(1)).Sugar()}
}

func (k kclLogger) Debugf(f string, a ...any) { k.l.Debugf(f, a...) }
func (k kclLogger) Infof(f string, a ...any)  { k.l.Debugf(f, a...) } // the engine is chatty at Info
func (k kclLogger) Warnf(f string, a ...any)  { k.l.Warnf(f, a...) }
func (k kclLogger) Errorf(f string, a ...any) { k.l.Errorf(f, a...) }
func (k kclLogger) Fatalf(f string, a ...any) { k.l.Errorf("engine fatal (ignored): "+f, a...) }
func (k kclLogger) Panicf(f string, a ...any) { k.l.Errorf("engine panic (ignored): "+f, a...) }
func (k kclLogger) WithFields(kv kcllog.Fields) kcllog.Logger {
	args := make([]any, 0, 2*len(kv))
	for k, v := range kv {
		args = append(args, k, fmt.Sprint(v))
	}
	return kclLogger{l: k.l.With(args...)}
}
