package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// printJSON writes v, which must encode as a JSON object, as one indented
// JSON document on stdout, with format_version.
func (a *app) printJSON(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("write JSON output: %w", err)
	}
	if data, err = versionedDocument(data); err != nil {
		return fmt.Errorf("write JSON output: %w", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, data, "", "  "); err != nil {
		return fmt.Errorf("write JSON output: %w", err)
	}
	out.WriteByte('\n')
	if _, err := a.out.Write(out.Bytes()); err != nil {
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
