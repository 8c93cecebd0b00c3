package pebblefold

import "log/slog"

func nilLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
