package main

import (
	"fmt"
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

// stateOptions are the options of the state store: its deadlines.
func (a *app) stateOptions() ([]state.OpenOption, error) {
	d, err := a.httpDeadlines()
	if err != nil {
		return nil, err
	}
	return []state.OpenOption{state.WithResponseHeaderTimeout(d.Header)}, nil
}
