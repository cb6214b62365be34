package s3store

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The names and values of AWS Signature Version 4 as S3 uses them.
const (
	sigAlgorithm    = "AWS4-HMAC-SHA256"
	sigTerminator   = "aws4_request"
	sigService      = "s3"
	amzDateFormat   = "20060102T150405Z"
	unsignedPayload = "UNSIGNED-PAYLOAD"
	// streamingSigned is an aws-chunked body whose every chunk is signed.
	streamingSigned = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	// streamingUnsignedTrailer is an aws-chunked body with a checksum
	// trailer and no chunk signatures.
	streamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	// maxPresignExpiry is the longest X-Amz-Expires S3 accepts (7 days).
	maxPresignExpiry = 7 * 24 * time.Hour
)

// emptySHA256 is the hex SHA-256 of nothing.
var emptySHA256 = hex.EncodeToString(sha256.New().Sum(nil))

// RequireSignature returns next behind a check of the AWS Signature
// Version 4 of every request, as S3 services (OVH's among them) check it:
// in the Authorization header or in the query (a presigned URL), with the
// secret that keys holds for the request's access key ID. A request that
// fails the check gets the S3 XML error such a service answers:
// 403 InvalidAccessKeyId for an unknown key, 403 SignatureDoesNotMatch for
// a signature made with another secret or over other content, 403
// AccessDenied for an anonymous request or an expired URL, 400 for a
// malformed one. The payload is checked too: a body whose SHA-256 is not
// the x-amz-content-sha256 signed, or an aws-chunked body whose chunk
// signatures do not follow from the request's, is refused.
func RequireSignature(next http.Handler, keys map[string]string) http.Handler {
	return &verifier{next: next, keys: keys, now: time.Now}
}

type verifier struct {
	next http.Handler
	keys map[string]string
	now  func() time.Time
}

// s3Error is an S3 error answer.
type s3Error struct {
	status  int
	code    string
	message string
	// Shown with SignatureDoesNotMatch, as S3 does, to help a client
	// author compare with what was signed (never a secret).
	accessKey, stringToSign, canonicalRequest string
}

func (e *s3Error) Error() string { return e.code + ": " + e.message }

func denied(code, format string, args ...any) *s3Error {
	return &s3Error{status: http.StatusForbidden, code: code, message: fmt.Sprintf(format, args...)}
}

func badRequest(code, format string, args ...any) *s3Error {
	return &s3Error{status: http.StatusBadRequest, code: code, message: fmt.Sprintf(format, args...)}
}

// ServeHTTP implements http.Handler.
func (v *verifier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := v.verify(r); err != nil {
		writeError(w, r, err)
		return
	}
	v.next.ServeHTTP(w, r)
}

// authInfo is what a request says about its signature.
type authInfo struct {
	accessKey, date, region, service, terminator string
	amzDate                                      string
	signedHeaders                                []string
	signature                                    string
	payloadHash                                  string
	presigned                                    bool
}

func (a *authInfo) scope() string {
	return strings.Join([]string{a.date, a.region, a.service, a.terminator}, "/")
}

// verify checks the signature of r and, when the signature covers it, its
// body; it replaces r.Body by the body read.
func (v *verifier) verify(r *http.Request) *s3Error {
	a, serr := parseAuth(r)
	if serr != nil {
		return serr
	}
	secret, ok := v.keys[a.accessKey]
	if !ok {
		e := denied("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
		e.accessKey = a.accessKey
		return e
	}
	if a.service != sigService || a.terminator != sigTerminator || a.region == "" {
		return badRequest("AuthorizationHeaderMalformed", "The authorization header is malformed; the credential scope %q must be DATE/REGION/s3/aws4_request.", a.scope())
	}
	at, err := time.Parse(amzDateFormat, a.amzDate)
	if err != nil {
		return denied("AccessDenied", "AWS authentication requires a valid x-amz-date (format YYYYMMDD'T'HHMMSS'Z'), not %q.", a.amzDate)
	}
	if a.date != a.amzDate[:8] {
		return badRequest("AuthorizationHeaderMalformed", "The authorization header is malformed; the date of the credential scope %s is not that of x-amz-date %s.", a.date, a.amzDate)
	}
	if a.presigned {
		if serr := checkExpiry(r, at, v.now()); serr != nil {
			return serr
		}
	}
	if !slices.Contains(a.signedHeaders, "host") {
		return denied("AccessDenied", "The host header must be signed.")
	}

	key := signingKey(secret, a.date, a.region, a.service)
	canonical := canonicalRequest(r, a)
	toSign := stringToSign(a.amzDate, a.scope(), canonical)
	want := hmacSHA256(key, toSign)
	got, err := hex.DecodeString(a.signature)
	if err != nil || !hmac.Equal(got, want) {
		e := denied("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
		e.accessKey, e.stringToSign, e.canonicalRequest = a.accessKey, toSign, canonical
		return e
	}
	return checkPayload(r, a, key, want)
}

// parseAuth reads the signature of r from its Authorization header or its
// query.
func parseAuth(r *http.Request) (*authInfo, *s3Error) {
	q := r.URL.Query()
	header := r.Header.Get("Authorization")
	switch {
	case header != "":
		return parseAuthHeader(r, header)
	case q.Has("X-Amz-Algorithm") || q.Has("X-Amz-Signature") || q.Has("X-Amz-Credential"):
		return parseAuthQuery(q)
	case q.Has("Signature") || q.Has("AWSAccessKeyId"):
		return nil, badRequest("InvalidRequest", "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")
	}
	return nil, denied("AccessDenied", "Access Denied")
}

func parseAuthHeader(r *http.Request, header string) (*authInfo, *s3Error) {
	alg, rest, _ := strings.Cut(header, " ")
	if alg != sigAlgorithm {
		return nil, badRequest("InvalidRequest", "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, badRequest("AuthorizationHeaderMalformed", "The authorization header is malformed; %q is not NAME=VALUE.", strings.TrimSpace(part))
		}
		fields[k] = val
	}
	a := &authInfo{signature: fields["Signature"], amzDate: r.Header.Get("X-Amz-Date"), payloadHash: r.Header.Get("X-Amz-Content-Sha256")}
	for _, name := range []string{"Credential", "SignedHeaders", "Signature"} {
		if fields[name] == "" {
			return nil, badRequest("AuthorizationHeaderMalformed", "The authorization header is malformed; it has no %s.", name)
		}
	}
	if serr := a.setCredential(fields["Credential"]); serr != nil {
		return nil, serr
	}
	a.signedHeaders = strings.Split(fields["SignedHeaders"], ";")
	if a.amzDate == "" {
		return nil, denied("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")
	}
	if a.payloadHash == "" {
		return nil, badRequest("InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
	}
	return a, nil
}

func parseAuthQuery(q url.Values) (*authInfo, *s3Error) {
	if alg := q.Get("X-Amz-Algorithm"); alg != sigAlgorithm {
		return nil, badRequest("AuthorizationQueryParametersError", "X-Amz-Algorithm only supports %q, not %q.", sigAlgorithm, alg)
	}
	for _, name := range []string{"X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"} {
		if q.Get(name) == "" {
			return nil, badRequest("AuthorizationQueryParametersError", "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters; %s is missing.", name)
		}
	}
	a := &authInfo{
		presigned:     true,
		amzDate:       q.Get("X-Amz-Date"),
		signature:     q.Get("X-Amz-Signature"),
		signedHeaders: strings.Split(q.Get("X-Amz-SignedHeaders"), ";"),
		payloadHash:   unsignedPayload,
	}
	if h := q.Get("X-Amz-Content-Sha256"); h != "" {
		a.payloadHash = h
	}
	if serr := a.setCredential(q.Get("X-Amz-Credential")); serr != nil {
		return nil, serr
	}
	return a, nil
}

// setCredential reads KEY/DATE/REGION/SERVICE/aws4_request.
func (a *authInfo) setCredential(cred string) *s3Error {
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || parts[0] == "" {
		return badRequest("AuthorizationHeaderMalformed", "The authorization header is malformed; the Credential %q must be KEY/DATE/REGION/s3/aws4_request.", cred)
	}
	a.accessKey, a.date, a.region, a.service, a.terminator = parts[0], parts[1], parts[2], parts[3], parts[4]
	return nil
}

// checkExpiry refuses a presigned URL whose X-Amz-Expires has passed.
func checkExpiry(r *http.Request, at, now time.Time) *s3Error {
	secs, err := strconv.Atoi(r.URL.Query().Get("X-Amz-Expires"))
	if err != nil || secs < 0 {
		return badRequest("AuthorizationQueryParametersError", "X-Amz-Expires should be a number of seconds.")
	}
	expiry := time.Duration(secs) * time.Second
	if expiry > maxPresignExpiry {
		return badRequest("AuthorizationQueryParametersError", "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds.")
	}
	if now.After(at.Add(expiry)) {
		return denied("AccessDenied", "Request has expired")
	}
	return nil
}

// canonicalRequest is the canonical form of r that its signature covers.
func canonicalRequest(r *http.Request, a *authInfo) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(canonicalPath(r))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.Query(), a.presigned))
	b.WriteByte('\n')
	for _, name := range a.signedHeaders {
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(headerValue(r, name))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(a.signedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(a.payloadHash)
	return b.String()
}

// canonicalPath is the path as the client sent it: S3 signs the path once
// encoded, as it is on the wire, not encoded again.
func canonicalPath(r *http.Request) string {
	p := r.RequestURI
	if !strings.HasPrefix(p, "/") {
		p = r.URL.EscapedPath()
	}
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	if p == "" {
		return "/"
	}
	return p
}

// canonicalQuery is the query, each name and value encoded as RFC 3986
// says, sorted by name then value; a presigned request's signature is left
// out.
func canonicalQuery(q url.Values, presigned bool) string {
	var pairs []string
	for name, values := range q {
		if presigned && name == "X-Amz-Signature" {
			continue
		}
		for _, v := range values {
			pairs = append(pairs, uriEncode(name)+"="+uriEncode(v))
		}
	}
	slices.Sort(pairs)
	return strings.Join(pairs, "&")
}

// uriEncode percent-encodes every byte but the unreserved characters of
// RFC 3986, in upper-case hex.
func uriEncode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// headerValue is the canonical value of the header name of r: its values
// trimmed, inner runs of spaces made one, joined by commas. Go's server
// keeps Host, Content-Length and Transfer-Encoding out of r.Header.
func headerValue(r *http.Request, name string) string {
	var values []string
	switch name {
	case "host":
		values = []string{r.Host}
	case "content-length":
		values = r.Header.Values("Content-Length")
		if len(values) == 0 && r.ContentLength >= 0 {
			values = []string{strconv.FormatInt(r.ContentLength, 10)}
		}
	case "transfer-encoding":
		values = r.TransferEncoding
	default:
		values = r.Header.Values(name)
	}
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(out, ",")
}

func stringToSign(amzDate, scope, canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	return sigAlgorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
}

func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, sigTerminator)
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

// checkPayload checks the body of r against the payload hash its
// signature covers, reading it and putting it back as r.Body; seed is the
// request's signature, the first link of a signed chunk chain.
func checkPayload(r *http.Request, a *authInfo, key, seed []byte) *s3Error {
	switch h := a.payloadHash; {
	case h == unsignedPayload, h == streamingUnsignedTrailer:
		return nil
	case h == streamingSigned:
		body, serr := readBody(r)
		if serr != nil {
			return serr
		}
		return checkChunks(body, a, key, seed)
	case len(h) == 64 && isLowerHex(h):
		body, serr := readBody(r)
		if serr != nil {
			return serr
		}
		sum := sha256.Sum256(body)
		if hex.EncodeToString(sum[:]) != h {
			return badRequest("XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.")
		}
		return nil
	default:
		return badRequest("InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, %s, %s or the hex SHA-256 of the body; the local cloud does not take %q.",
			streamingSigned, streamingUnsignedTrailer, h)
	}
}

// readBody reads r's body and puts it back for the next handler.
func readBody(r *http.Request) ([]byte, *s3Error) {
	if r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return nil, badRequest("IncompleteBody", "The request body could not be read: %v.", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, nil
}

// checkChunks checks the signatures of an aws-chunked body:
//
//	HEX-SIZE;chunk-signature=SIGNATURE\r\n DATA \r\n ... 0;chunk-signature=SIGNATURE\r\n\r\n
//
// Each chunk's signature signs its data and the previous signature, so
// chunks can be neither altered, reordered, dropped nor added.
func checkChunks(body []byte, a *authInfo, key, seed []byte) *s3Error {
	malformed := func(format string, args ...any) *s3Error {
		return badRequest("IncompleteBody", "The aws-chunked body is malformed: "+format, args...)
	}
	prev := hex.EncodeToString(seed)
	br := bufio.NewReader(bytes.NewReader(body))
	for {
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasSuffix(line, "\r\n") {
			return malformed("a chunk header does not end with CRLF")
		}
		sizeHex, sig, ok := strings.Cut(strings.TrimSuffix(line, "\r\n"), ";chunk-signature=")
		if !ok {
			return malformed("a chunk header has no chunk-signature")
		}
		size, err := strconv.ParseUint(sizeHex, 16, 31)
		if err != nil {
			return malformed("chunk size %q", sizeHex)
		}
		data := make([]byte, size)
		if _, err := io.ReadFull(br, data); err != nil {
			return malformed("a chunk is shorter than its size")
		}
		var crlf [2]byte
		if _, err := io.ReadFull(br, crlf[:]); err != nil || string(crlf[:]) != "\r\n" {
			return malformed("a chunk does not end with CRLF")
		}
		sum := sha256.Sum256(data)
		toSign := "AWS4-HMAC-SHA256-PAYLOAD\n" + a.amzDate + "\n" + a.scope() + "\n" + prev + "\n" + emptySHA256 + "\n" + hex.EncodeToString(sum[:])
		want := hmacSHA256(key, toSign)
		got, err := hex.DecodeString(sig)
		if err != nil || !hmac.Equal(got, want) {
			e := denied("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
			e.accessKey, e.stringToSign = a.accessKey, toSign
			return e
		}
		prev = sig
		if size == 0 {
			if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
				return malformed("data after the last chunk")
			}
			return nil
		}
	}
}

func isLowerHex(s string) bool {
	return strings.Trim(s, "0123456789abcdef") == ""
}

// errorBody is the XML of an S3 error.
type errorBody struct {
	XMLName          xml.Name `xml:"Error"`
	Code             string   `xml:"Code"`
	Message          string   `xml:"Message"`
	AWSAccessKeyID   string   `xml:"AWSAccessKeyId,omitempty"`
	StringToSign     string   `xml:"StringToSign,omitempty"`
	CanonicalRequest string   `xml:"CanonicalRequest,omitempty"`
	RequestID        string   `xml:"RequestId"`
}

// writeError answers e as S3 does: the XML error, without body for HEAD.
func writeError(w http.ResponseWriter, r *http.Request, e *s3Error) {
	var id [8]byte
	_, _ = rand.Read(id[:])
	reqID := strings.ToUpper(hex.EncodeToString(id[:]))
	w.Header().Set("x-amz-request-id", reqID)
	w.Header().Set("Content-Type", "application/xml")
	// The body was not read: the connection cannot carry another request.
	w.Header().Set("Connection", "close")
	w.WriteHeader(e.status)
	if r.Method == http.MethodHead {
		return
	}
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(errorBody{
		Code: e.code, Message: e.message, AWSAccessKeyID: e.accessKey,
		StringToSign: e.stringToSign, CanonicalRequest: e.canonicalRequest, RequestID: reqID,
	})
}
