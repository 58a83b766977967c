package broker

import (
	"context"
	"errors"
	"log/slog"
	"net"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// slogHandler sends the slog records of mochi-mqtt to a zap logger. mochi's info records
// (hooks added, listener attached, starting, stopping) go out at debug level: Start and Close
// log what matters of them.
type slogHandler struct {
	log    *zap.Logger
	prefix string // group names, each followed by "."
}

func newSlogHandler(log *zap.Logger) slog.Handler { return slogHandler{log: log} }

func (h slogHandler) Enabled(_ context.Context, l slog.Level) bool {
	return h.log.Core().Enabled(zapLevel(l))
}

func (h slogHandler) Handle(_ context.Context, r slog.Record) error {
	level := zapLevel(r.Level)
	if closedConn(r) {
		level = zapcore.DebugLevel // a listener's connections ending as the broker closes
	}
	ce := h.log.Check(level, r.Message)
	if ce == nil {
		return nil
	}
	fields := make([]zap.Field, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		fields = h.appendAttr(fields, h.prefix, a)
		return true
	})
	ce.Write(fields...)
	return nil
}

// closedConn reports whether the record's error is a read on a closed connection.
func closedConn(r slog.Record) bool {
	closed := false
	r.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Resolve().Any().(error); ok && errors.Is(err, net.ErrClosed) {
			closed = true
		}
		return !closed
	})
	return closed
}

func (h slogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var fields []zap.Field
	for _, a := range attrs {
		fields = h.appendAttr(fields, h.prefix, a)
	}
	return slogHandler{log: h.log.With(fields...), prefix: h.prefix}
}

func (h slogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return slogHandler{log: h.log, prefix: h.prefix + name + "."}
}

func (h slogHandler) appendAttr(fields []zap.Field, prefix string, a slog.Attr) []zap.Field {
	v := a.Value.Resolve()
	key := prefix + a.Key
	switch v.Kind() {
	case slog.KindGroup:
		for _, g := range v.Group() {
			fields = h.appendAttr(fields, key+".", g)
		}
		return fields
	case slog.KindString:
		return append(fields, zap.String(key, v.String()))
	case slog.KindInt64:
		return append(fields, zap.Int64(key, v.Int64()))
	case slog.KindUint64:
		return append(fields, zap.Uint64(key, v.Uint64()))
	case slog.KindFloat64:
		return append(fields, zap.Float64(key, v.Float64()))
	case slog.KindBool:
		return append(fields, zap.Bool(key, v.Bool()))
	case slog.KindDuration:
		return append(fields, zap.Duration(key, v.Duration()))
	case slog.KindTime:
		return append(fields, zap.Time(key, v.Time()))
	}
	if v.Any() == nil {
		return fields
	}
	if err, ok := v.Any().(error); ok {
		return append(fields, zap.NamedError(key, err))
	}
	return append(fields, zap.Any(key, v.Any()))
}

func zapLevel(l slog.Level) zapcore.Level {
	switch {
	case l >= slog.LevelError:
		return zapcore.ErrorLevel
	case l >= slog.LevelWarn:
		return zapcore.WarnLevel
	}
	return zapcore.DebugLevel
}
