package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/accoreboot/acco/state"
)

// Exit codes, as in DESIGN.md.
const (
	exitOK      = 0
	exitError   = 1
	exitChanges = 2
	exitLocked  = 3
)

// exitError carries an explicit exit code, for results that are not
// failures (changes present) or that were already reported.
type codedError struct {
	code     int
	err      error
	reported bool // the command already printed everything the user needs
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

// hinted is an error that knows what the user should do next.
type hinted struct {
	err  error
	hint string
}

func (e *hinted) Error() string { return e.err.Error() }
func (e *hinted) Unwrap() error { return e.err }

// Hint returns the advice.
func (e *hinted) Hint() string { return e.hint }

// withHint attaches advice to err; it is printed once, after the message.
func withHint(err error, format string, args ...any) error {
	return &hinted{err: err, hint: fmt.Sprintf(format, args...)}
}

// leaseLost is the error of a run stopped because its lease was lost: the
// loss (with its hint) first, then what the run reported.
type leaseLost struct {
	lost error
	then error
}

func (e *leaseLost) Error() string { return fmt.Sprintf("%v; the run stopped: %v", e.lost, e.then) }
func (e *leaseLost) Unwrap() error { return e.lost }

// exitCode maps an error to the process exit code.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var coded *codedError
	if errors.As(err, &coded) {
		return coded.code
	}
	if errors.Is(err, state.ErrLocked) {
		return exitLocked
	}
	return exitError
}

// jsonError is the document printed on stdout when a command fails under --json.
type jsonError struct {
	Error    string    `json:"error"`
	Hint     string    `json:"hint,omitempty"`
	ExitCode int       `json:"exit_code"`
	Holder   *lockJSON `json:"holder,omitempty"`
}

// finish reports err the way the user asked for and returns the exit code.
func (a *app) finish(err error) int {
	if lost := a.leaseLostErr(); lost != nil && err != nil && !errors.Is(err, state.ErrLockLost) {
		// What stopped the run is the lost lease, whatever error the
		// cancellation then caused.
		err = &leaseLost{lost: lost, then: err}
	}
	code := exitCode(err)
	if err == nil {
		return code
	}
	var coded *codedError
	if errors.As(err, &coded) && coded.reported {
		return code
	}
	// Errors quote what others stored (a lock's holder and reason) and
	// what the servers said: no escape sequence reaches the terminal.
	msg := printableLines(err.Error())
	if errors.Is(err, context.Canceled) {
		msg = "interrupted: " + msg
	}
	var hint string
	var h interface{ Hint() string } // hinted here, flows.HintError from the flows
	if errors.As(err, &h) {
		hint = printableLines(h.Hint())
	}
	if hint == "" && timedOut(context.Background(), err) && !errors.Is(err, context.Canceled) {
		if d, derr := a.httpDeadlines(); derr == nil {
			hint = timeoutHint(d)
		}
	}
	fmt.Fprintf(a.err, "Error: %s\n", msg)
	if hint != "" {
		fmt.Fprintf(a.err, "Hint: %s\n", hint)
	}
	if a.json {
		doc := jsonError{Error: msg, Hint: hint, ExitCode: code}
		var lockErr *state.LockError
		if errors.As(err, &lockErr) {
			doc.Holder = holderJSON(&lockErr.Holder)
		}
		_ = a.printJSON(doc)
	}
	return code
}
