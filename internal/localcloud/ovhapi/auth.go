package ovhapi

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Signature computes go-ovh's request signature:
// "$1$" + hex(sha1(secret+"+"+consumerKey+"+"+method+"+"+url+"+"+body+"+"+timestamp)),
// url being the full URL the client called, query string included.
func Signature(applicationSecret, consumerKey, method, url string, body []byte, timestamp int64) string {
	h := sha1.New()
	for i, part := range [][]byte{
		[]byte(applicationSecret), []byte(consumerKey), []byte(method), []byte(url), body,
		[]byte(strconv.FormatInt(timestamp, 10)),
	} {
		if i > 0 {
			h.Write([]byte{'+'})
		}
		h.Write(part)
	}
	return "$1$" + hex.EncodeToString(h.Sum(nil))
}

// authenticate checks the X-Ovh-* headers of a signed call.
func (a *API) authenticate(r *http.Request, body []byte) *apiError {
	ak := r.Header.Get("X-Ovh-Application")
	if ak == "" {
		return errNotAuthenticated()
	}
	creds, ok := a.creds[ak]
	if !ok {
		return errInvalidKey()
	}
	ck := r.Header.Get("X-Ovh-Consumer")
	var cred *Credential
	for i := range creds {
		if creds[i].ConsumerKey == ck {
			cred = &creds[i]
			break
		}
	}
	if cred == nil {
		return errInvalidCredential()
	}
	ts, err := strconv.ParseInt(r.Header.Get("X-Ovh-Timestamp"), 10, 64)
	if err != nil {
		return errQueryTimeOut()
	}
	skew := a.now().Sub(time.Unix(ts, 0))
	if skew < 0 {
		skew = -skew
	}
	if skew > a.cfg.MaxClockSkew {
		return errQueryTimeOut()
	}
	got := []byte(r.Header.Get("X-Ovh-Signature"))
	for _, url := range signedURLs(r) {
		want := Signature(cred.ApplicationSecret, cred.ConsumerKey, r.Method, url, body, ts)
		if subtle.ConstantTimeCompare(got, []byte(want)) == 1 {
			return nil
		}
	}
	return errInvalidSignature()
}

// signedURLs returns the URLs the client may have signed: the one it sent the
// request to, rebuilt from the scheme, the Host header and the request URI as
// it came on the wire; and, behind a proxy that says so, the one it called
// the proxy with.
func signedURLs(r *http.Request) []string {
	uri := r.RequestURI
	if strings.HasPrefix(uri, "http://") || strings.HasPrefix(uri, "https://") {
		return []string{uri} // absolute form, as sent to a forward proxy
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	urls := []string{scheme + "://" + r.Host + uri}
	fwdProto := r.Header.Get("X-Forwarded-Proto")
	fwdHost := r.Header.Get("X-Forwarded-Host")
	if fwdProto != "" || fwdHost != "" {
		if fwdProto == "" {
			fwdProto = scheme
		}
		if fwdHost == "" {
			fwdHost = r.Host
		}
		urls = append(urls, fwdProto+"://"+fwdHost+uri)
	}
	return urls
}
