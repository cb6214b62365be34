package flows

import "fmt"

// HintError is an error that knows what the operator should do next. The
// CLI prints the hint after the message.
type HintError struct {
	Err  error
	hint string
}

func (e *HintError) Error() string { return e.Err.Error() }
func (e *HintError) Unwrap() error { return e.Err }

// Hint returns the advice.
func (e *HintError) Hint() string { return e.hint }

// withHint attaches advice to err.
func withHint(err error, format string, args ...any) error {
	return &HintError{Err: err, hint: fmt.Sprintf(format, args...)}
}
