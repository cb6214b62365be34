package flows

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/accoreboot/acco/templates"
)

// checkToken checks a client token as PowerSync does for an inline Ed25519
// key: kid, EdDSA signature, and the claims it requires.
func checkToken(pub ed25519.PublicKey, tok, audience string, now time.Time) error {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return fmt.Errorf("not a JWT")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
		return fmt.Errorf("signature does not verify")
	}
	var head struct{ Alg, Kid string }
	var claims struct {
		Sub, Aud string
		Iat, Exp int64
		Acco     string `json:"acco"`
	}
	for i, v := range []any{&head, &claims} {
		b, _ := base64.RawURLEncoding.DecodeString(parts[i])
		if err := json.Unmarshal(b, v); err != nil {
			return err
		}
	}
	switch {
	case head.Alg != "EdDSA" || head.Kid != templates.PowerSyncVerifyKeyID:
		return fmt.Errorf("header %+v", head)
	case claims.Sub == "" || claims.Aud != audience || claims.Acco != templates.VerifyClaimValue || templates.VerifyClaim != "acco":
		return fmt.Errorf("claims %+v", claims)
	case claims.Iat > now.Unix()+1 || claims.Exp <= now.Unix() || claims.Exp-claims.Iat > 86400:
		return fmt.Errorf("times %+v", claims)
	}
	return nil
}

func TestSyncSees(t *testing.T) {
	key := powerSyncKey("a secret from state")
	pub := key.Public().(ed25519.PublicKey)
	if !pub.Equal(powerSyncKey("a secret from state").Public()) || pub.Equal(powerSyncKey("another").Public()) {
		t.Fatal("the key is not derived from the secret alone")
	}
	row := func(op string, lat float64) string {
		data, _ := json.Marshal(fmt.Sprintf(`{"id":"acco-verify","device_id":"acco-verify","lat":%v,"lon":4.8357}`, lat))
		return fmt.Sprintf(`{"data":{"bucket":"acco_verify[]","data":[{"op_id":"1","op":%q,"object_type":"device_last_position","object_id":"acco-verify","data":%s,"checksum":1}]}}`, op, data)
	}
	for _, tc := range []struct {
		name  string
		lines []string
		ok    bool
	}{
		{"the new row after an old one removed", []string{
			`{"checkpoint":{"last_op_id":"2","buckets":[]}}`, row("PUT", 45.7), row("REMOVE", 45.7), `{"checkpoint_complete":{"last_op_id":"2"}}`,
			`{"checkpoint_diff":{"last_op_id":"3","updated_buckets":[],"removed_buckets":[]}}`, row("PUT", 45.7641), `{"checkpoint_complete":{"last_op_id":"3"}}`,
		}, true},
		{"only the old position", []string{`{"checkpoint":{"last_op_id":"1","buckets":[]}}`, row("PUT", 45.7), `{"checkpoint_complete":{"last_op_id":"1"}}`}, false},
		{"removed", []string{row("PUT", 45.7641), row("REMOVE", 45.7641), `{"checkpoint_complete":{"last_op_id":"2"}}`}, false},
		{"nothing", []string{`{"token_expires_in":300}`}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var body struct {
					RawData bool `json:"raw_data"`
				}
				if err := json.NewDecoder(r.Body).Decode(&body); err != nil || !body.RawData {
					http.Error(w, "bad request", http.StatusBadRequest)
					return
				}
				tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Token ")
				if r.URL.Path != "/sync/stream" || r.Method != http.MethodPost || !ok {
					http.Error(w, "no", http.StatusNotFound)
					return
				}
				if err := checkToken(pub, tok, "acco-app", time.Now()); err != nil {
					http.Error(w, err.Error(), http.StatusUnauthorized)
					return
				}
				w.Header().Set("Content-Type", "application/x-ndjson")
				for _, l := range tc.lines {
					fmt.Fprintln(w, l)
					w.(http.Flusher).Flush()
				}
				<-r.Context().Done() // the stream stays open, as PowerSync's does
			}))
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			var d net.Dialer
			tok := clientToken(key, "acco-verify", "acco-app", time.Now(), 5*time.Minute)
			err := syncSees(ctx, d.DialContext, strings.TrimPrefix(srv.URL, "http://"), tok, "device_last_position", "acco-verify", samePosition(45.7641, 4.8357))
			if (err == nil) != tc.ok {
				t.Fatalf("syncSees = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	// A token signed by another key is refused, and the error says so.
	srvKey := powerSyncKey("another")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Token ")
		if err := checkToken(srvKey.Public().(ed25519.PublicKey), tok, "acco-app", time.Now()); err != nil {
			http.Error(w, `{"error":{"code":"PSYNC_S2101"}}`, http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	var d net.Dialer
	err := syncSees(ctx, d.DialContext, strings.TrimPrefix(srv.URL, "http://"), clientToken(key, "acco-verify", "acco-app", time.Now(), time.Minute), "device_last_position", "acco-verify", samePosition(1, 2))
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("with a key PowerSync does not know: %v", err)
	}
}
