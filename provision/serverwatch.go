package provision

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/accoreboot/acco/provision/openstack"
)

// serverWatch shares the server listings of one apply among its waits: a
// wait for a server to be ACTIVE, or gone, asks for a listing made after
// it asked, and every wait that asks while a listing is on its way shares
// the next one. Waiting for 50 servers is then about one list call per
// poll interval, not 50 GETs. At most one listing is in flight.
type serverWatch struct {
	compute openstack.Compute

	mu   sync.Mutex
	cur  *listing // in flight, or nil
	last *listing // the newest complete listing that succeeded
}

// listing is one ListServers call and its answer.
type listing struct {
	started time.Time
	done    chan struct{}
	servers map[string]openstack.Server
	err     error
}

func newServerWatch(c openstack.Compute) *serverWatch {
	return &serverWatch{compute: c}
}

// get returns server id as seen by a listing started at or after since;
// found is false when that listing does not have it (the server is gone).
func (w *serverWatch) get(ctx context.Context, id string, since time.Time) (s openstack.Server, found bool, err error) {
	for {
		w.mu.Lock()
		if l := w.last; l != nil && !l.started.Before(since) {
			w.mu.Unlock()
			s, found = l.servers[id]
			return s, found, nil
		}
		if w.cur == nil {
			l := &listing{started: time.Now(), done: make(chan struct{})}
			w.cur = l
			w.mu.Unlock()
			w.run(ctx, l)
			if l.err != nil {
				return openstack.Server{}, false, l.err
			}
			continue
		}
		l := w.cur
		w.mu.Unlock()
		select {
		case <-l.done:
		case <-ctx.Done():
			return openstack.Server{}, false, ctx.Err()
		}
		// A listing that failed only because the wait that ran it was
		// cancelled says nothing about the others: they run their own.
		if l.err != nil && !l.started.Before(since) && !isContextError(l.err) {
			return openstack.Server{}, false, l.err
		}
	}
}

// run makes listing l and publishes it.
func (w *serverWatch) run(ctx context.Context, l *listing) {
	servers, err := w.compute.ListServers(ctx)
	if err == nil {
		l.servers = make(map[string]openstack.Server, len(servers))
		for _, s := range servers {
			l.servers[s.ID] = s
		}
	}
	l.err = err
	w.mu.Lock()
	if err == nil && (w.last == nil || w.last.started.Before(l.started)) {
		w.last = l
	}
	w.cur = nil
	w.mu.Unlock()
	close(l.done)
}

func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
