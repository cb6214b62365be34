package main

import (
	"encoding/json"
	"fmt"
	"io"
)

// printJSON writes v as one indented JSON document on stdout.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON output: %w", err)
	}
	return nil
}

// human returns where human-readable results go: stdout normally, stderr
// under --json so that stdout holds only JSON.
func (a *app) human() *humanWriter {
	if a.json {
		return &humanWriter{w: a.err}
	}
	return &humanWriter{w: a.out}
}

// humanWriter prints lines of human text.
type humanWriter struct {
	w io.Writer
}

func (h *humanWriter) printf(format string, args ...any) {
	fmt.Fprintf(h.w, format, args...)
}
