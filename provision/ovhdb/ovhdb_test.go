package ovhdb_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accoreboot/acco/internal/localcloud"
	"github.com/accoreboot/acco/provision/httpretry"
	"github.com/accoreboot/acco/provision/internal/lctest"
	"github.com/accoreboot/acco/provision/ovhdb"
)

func TestAdapterRoundTrip(t *testing.T) {
	lc := lctest.Start(t, localcloud.Options{})
	api, err := ovhdb.New(ovhdb.Config{Project: lctest.Project, Lookup: lc.Lookup, HTTPClient: httpretry.Client(nil)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	offers, err := api.Availability(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ok := false
	for _, o := range offers {
		ok = ok || (o.Version == "17" && o.Plan == "essential" && o.FlavorName() == "db1-4" && o.Region == "GRA")
	}
	if !ok {
		t.Fatalf("no 17/essential/db1-4/GRA offer among %d", len(offers))
	}

	cl, err := api.CreateCluster(ctx, ovhdb.ClusterCreate{
		Description: "acco-test-main", Plan: "essential", Version: "17",
		NodesPattern:   ovhdb.NodesPattern{Flavor: "db1-4", Number: 1, Region: "GRA"},
		IPRestrictions: []ovhdb.IPRestriction{{IP: "192.0.2.1/32", Description: "instance.app"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); cl.Status != ovhdb.StatusReady; time.Sleep(20 * time.Millisecond) {
		if cl, err = api.GetCluster(ctx, cl.ID); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster never READY: %+v", cl)
		}
	}
	if cl.Region() != "GRA" || cl.Flavor != "db1-4" || len(cl.IPRestrictions) != 1 {
		t.Errorf("cluster = %+v", cl)
	}
	if _, ok := cl.Endpoint("postgresql"); !ok {
		t.Errorf("no postgresql endpoint: %+v", cl.Endpoints)
	}
	list, err := api.ListClusters(ctx)
	if err != nil || len(list) != 1 || list[0].ID != cl.ID {
		t.Fatalf("ListClusters = %+v, %v", list, err)
	}

	ips := []ovhdb.IPRestriction{{IP: "192.0.2.2/32"}}
	if err := api.UpdateCluster(ctx, cl.ID, ovhdb.ClusterUpdate{IPRestrictions: &ips}); err != nil {
		t.Fatal(err)
	}

	// Wait for the update before creating users (OVH refuses meanwhile).
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if cl, err = api.GetCluster(ctx, cl.ID); err != nil {
			t.Fatal(err)
		}
		if cl.Status == ovhdb.StatusReady {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster never READY after update: %+v", cl)
		}
	}
	u, err := api.CreateUser(ctx, cl.ID, "emqx", nil)
	if err != nil {
		t.Fatal(err)
	}
	if u.Password == "" {
		t.Error("CreateUser returned no password")
	}
	users, err := api.ListUsers(ctx, cl.ID)
	if err != nil {
		t.Fatal(err)
	}
	seen := false
	for _, x := range users {
		if x.Password != "" {
			t.Errorf("ListUsers returned a password for %s", x.Username)
		}
		seen = seen || x.ID == u.ID
	}
	if !seen {
		t.Errorf("user not listed: %+v", users)
	}
	if _, err := api.CreateUser(ctx, cl.ID, "emqx", nil); !errors.Is(err, ovhdb.ErrConflict) {
		t.Errorf("second CreateUser: %v, want ErrConflict", err)
	}
	r, err := api.ResetPassword(ctx, cl.ID, u.ID)
	if err != nil || r.Password == "" || r.Password == u.Password {
		t.Errorf("ResetPassword: %v (new password set: %v)", err, r.Password != "")
	}
	d, err := api.CreateDatabase(ctx, cl.ID, "acco")
	if err != nil {
		t.Fatal(err)
	}
	dbs, err := api.ListDatabases(ctx, cl.ID)
	if err != nil || len(dbs) < 2 {
		t.Fatalf("ListDatabases = %+v, %v", dbs, err)
	}

	// Concurrent calls share one go-ovh client safely.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := api.GetCluster(ctx, cl.ID); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()

	if err := api.DeleteDatabase(ctx, cl.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	if err := api.DeleteUser(ctx, cl.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	if err := api.DeleteUser(ctx, cl.ID, u.ID); !errors.Is(err, ovhdb.ErrNotFound) {
		t.Errorf("second DeleteUser: %v", err)
	}
	if err := api.DeleteCluster(ctx, cl.ID); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, err := api.GetCluster(ctx, cl.ID)
		if errors.Is(err, ovhdb.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster still there: %v", err)
		}
	}
}

// TestAuthErrorsSayWhichCredential: each wrong OVH API key gives an error
// that names the variable to fix.
func TestAuthErrorsSayWhichCredential(t *testing.T) {
	lc := lctest.Start(t, localcloud.Options{})
	for _, tc := range []struct{ name, variable, want string }{
		{"wrong secret", "OVH_APPLICATION_SECRET", "check the application secret"},
		{"unknown application", "OVH_APPLICATION_KEY", "OVH_APPLICATION_KEY (application_key in ovh.conf) is unknown"},
		{"unknown consumer key", "OVH_CONSUMER_KEY", "OVH_CONSUMER_KEY (consumer_key in ovh.conf) is unknown or expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lookup := func(name string) (string, bool) {
				if name == tc.variable {
					return "wrong-value", true
				}
				return lc.Lookup(name)
			}
			api, err := ovhdb.New(ovhdb.Config{Project: lctest.Project, Lookup: lookup, HTTPClient: httpretry.Client(nil)})
			if err != nil {
				t.Fatal(err)
			}
			_, err = api.ListClusters(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ListClusters with a wrong %s: %v, want an error saying %q", tc.variable, err, tc.want)
			}
		})
	}
}

// TestClockReadStopsWithContext: go-ovh reads the API's clock under no
// context; against a server that never answers, the call still ends when
// its context does.
func TestClockReadStopsWithContext(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				_ = c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	api, err := ovhdb.New(ovhdb.Config{Project: lctest.Project, Endpoint: "http://" + l.Addr().String(),
		ApplicationKey: "ak", ApplicationSecret: "as", ConsumerKey: "ck",
		HTTPClient: httpretry.ClientWith(httpretry.DefaultDeadlines)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = api.ListClusters(ctx)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "reading the clock of the OVH API") {
		t.Errorf("ListClusters = %v, want the clock read cancelled", err)
	}
}

// TestClockReadOncePerClient: the calls of one Client, however many at once
// and whichever pooled go-ovh client carries them, share one read of the
// API's clock; a failed read is not kept, the next call reads again.
func TestClockReadOncePerClient(t *testing.T) {
	for _, tc := range []struct {
		name      string
		failFirst bool
		// start starts the read before the calls (StartClockRead).
		start bool
		// wantReads is how many clock reads the calls cause.
		wantReads int64
	}{
		{name: "one read for all", wantReads: 1},
		{name: "started ahead", start: true, wantReads: 1},
		{name: "a failed read is retried", failFirst: true, wantReads: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var reads atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/auth/time" {
					if reads.Add(1) == 1 && tc.failFirst {
						http.Error(w, `{"message":"down"}`, http.StatusInternalServerError)
						return
					}
					fmt.Fprint(w, time.Now().Unix())
					return
				}
				if r.Header.Get("X-Ovh-Signature") == "" || r.Header.Get("X-Ovh-Timestamp") == "" {
					http.Error(w, `{"message":"not signed"}`, http.StatusForbidden)
					return
				}
				fmt.Fprint(w, "[]")
			}))
			defer srv.Close()
			api, err := ovhdb.New(ovhdb.Config{Project: lctest.Project, Endpoint: srv.URL,
				ApplicationKey: "ak", ApplicationSecret: "as", ConsumerKey: "ck", HTTPClient: srv.Client()})
			if err != nil {
				t.Fatal(err)
			}
			if tc.failFirst {
				_, err := api.ListClusters(t.Context())
				if err == nil || !strings.Contains(err.Error(), "reading the clock of the OVH API") {
					t.Fatalf("ListClusters with the clock down = %v, want the clock read's error", err)
				}
			}
			if tc.start {
				api.StartClockRead(t.Context())
			}
			const callers = 16
			errs := make([]error, callers)
			var wg sync.WaitGroup
			for i := range callers {
				wg.Go(func() { _, errs[i] = api.ListClusters(t.Context()) })
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			if got := reads.Load(); got != tc.wantReads {
				t.Errorf("%d concurrent calls read the clock %d times, want %d", callers, got, tc.wantReads)
			}
		})
	}
}
