package openstack_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/accoreboot/acco/internal/localcloud"
	"github.com/accoreboot/acco/provision/httpretry"
	"github.com/accoreboot/acco/provision/internal/lctest"
	"github.com/accoreboot/acco/provision/openstack"
)

// TestBlackHoleServices: Keystone answers, but the catalog it gives sends
// Nova (or Neutron) to a server that accepts connections and never
// answers. Each call (or Connect, which asks Neutron for its versions)
// gives up after its attempts, each bounded by the
// response-header deadline, with an error that says so.
func TestBlackHoleServices(t *testing.T) {
	lc := lctest.Start(t, localcloud.Options{})
	hole := blackHole(t)
	for _, tc := range []struct {
		service string
		call    func(ctx context.Context, c *openstack.Clients) error
	}{
		{"compute", func(ctx context.Context, c *openstack.Clients) error {
			_, err := c.Compute.ListFlavors(ctx)
			return err
		}},
		{"network", func(ctx context.Context, c *openstack.Clients) error {
			_, err := c.Network.ListNetworks(ctx)
			return err
		}},
	} {
		t.Run(tc.service, func(t *testing.T) {
			proxy := catalogProxy(t, lc.Info.APIURL, "/"+tc.service+"/", hole)
			lookup := func(k string) (string, bool) {
				switch k {
				case "OS_AUTH_URL":
					return proxy + "/identity/v3", true
				case "OS_CLIENT_CONFIG_FILE":
					return "", false
				}
				return lc.Lookup(k)
			}
			d := httpretry.DefaultDeadlines.WithHeader(100 * time.Millisecond)
			hc := &http.Client{Transport: &httpretry.Transport{Base: httpretry.BaseTransport(d), AttemptTimeout: d.Attempt, MaxAttempts: 3, MinDelay: time.Millisecond}}
			// Connect itself asks Neutron for its versions.
			c, err := openstack.Connect(t.Context(), openstack.Config{Project: lctest.Project, Region: lctest.Region, Lookup: lookup, HTTPClient: hc})
			if err == nil {
				err = tc.call(t.Context(), c)
			}
			if err == nil || !strings.Contains(err.Error(), "timeout awaiting response headers (after 3 attempts)") || !strings.Contains(err.Error(), hole) {
				t.Errorf("call to a black-hole %s: %v, want the header timeout after 3 attempts, naming %s", tc.service, err, hole)
			}
		})
	}
}

// blackHole returns the address of a listener that accepts connections
// and never answers.
func blackHole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 64)
	t.Cleanup(func() {
		_ = l.Close()
		close(conns)
		for c := range conns {
			_ = c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			select {
			case conns <- c:
			default:
				_ = c.Close()
			}
		}
	}()
	return l.Addr().String()
}

// catalogProxy forwards to the local cloud's API at api, rewriting the
// service catalog of token answers so that URLs under prefix point at
// hole instead.
func catalogProxy(t *testing.T, api, prefix, hole string) string {
	t.Helper()
	target, err := url.Parse(api)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error {
		if !strings.HasSuffix(resp.Request.URL.Path, "/auth/tokens") {
			return nil
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return err
		}
		body = bytes.ReplaceAll(body, []byte(api+prefix), []byte("http://"+hole+prefix))
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv.URL
}
