package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/accoreboot/acco/provision/httpretry"
	"github.com/accoreboot/acco/state"
)

// httpTimeoutVar names the variable that shortens (or lengthens) how long
// each HTTP attempt to OpenStack, OVH or S3 waits for an answer.
const httpTimeoutVar = "ACCO_HTTP_TIMEOUT"

// httpDeadlines returns the per-attempt deadlines of cloud and state calls:
// httpretry.DefaultDeadlines, with the response-header deadline set by
// ACCO_HTTP_TIMEOUT when it is given.
func (a *app) httpDeadlines() (httpretry.Deadlines, error) {
	d := httpretry.DefaultDeadlines
	v := a.getenv(httpTimeoutVar)
	if v == "" {
		return d, nil
	}
	h, err := time.ParseDuration(v)
	if err != nil || h <= 0 {
		return d, fmt.Errorf("%s=%q: want a positive duration such as 30s or 2m (how long each HTTP attempt waits for an answer), or unset it for the default %s", httpTimeoutVar, v, d.Header)
	}
	return d.WithHeader(h), nil
}

// timedOut reports whether err is a deadline that ran out while ctx was
// still live: a server that did not answer in time, not an interrupt.
func timedOut(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// timeoutHint says what to do when a server did not answer in time.
func timeoutHint(d httpretry.Deadlines) string {
	return fmt.Sprintf("the server accepted the connection but did not answer within %s on each of %d attempts: check that the endpoint in the error is the right one and reachable (a proxy or firewall that swallows requests does this); %s=2m waits longer on a slow link",
		d.Header, httpretry.DefaultAttempts, httpTimeoutVar)
}

// stateOptions are the options of the state store: its deadlines.
func (a *app) stateOptions() ([]state.OpenOption, error) {
	d, err := a.httpDeadlines()
	if err != nil {
		return nil, err
	}
	return []state.OpenOption{state.WithResponseHeaderTimeout(d.Header)}, nil
}
