package flows

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/accoreboot/acco/internal/devicecred"
	"github.com/accoreboot/acco/templates"
)

// powerSyncKey is acco verify's Ed25519 key, derived from the secret sealed
// in state (its public half is in PowerSync's client_auth).
func powerSyncKey(secret string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("acco powersync verify key\x00" + secret))
	return ed25519.NewKeyFromSeed(seed[:])
}

// clientToken mints a PowerSync client token as the apps' tokens are made:
// EdDSA, kid, sub, aud, iat and exp (PowerSync requires all of them), plus
// the claim acco's own bucket of the sync config keys on
// (templates.VerifyClaim), which no app token carries.
func clientToken(key ed25519.PrivateKey, subject, audience string, now time.Time, ttl time.Duration) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	head := enc(map[string]string{"alg": "EdDSA", "typ": "JWT", "kid": templates.PowerSyncVerifyKeyID})
	body := enc(map[string]any{"sub": subject, "aud": audience, "iat": now.Unix(), "exp": now.Add(ttl).Unix(), templates.VerifyClaim: templates.VerifyClaimValue})
	sig := ed25519.Sign(key, []byte(head+"."+body))
	return head + "." + body + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// syncRow is a row as the sync stream last gave it.
type syncRow struct {
	op   string
	data string
}

// syncSees opens PowerSync's sync stream at addr (dialled with dial) with
// token, as an app does, and reads it until the row of table whose id is
// device is there (last operation PUT) and match accepts its data, or ctx
// ends. It returns what it saw of that row when it fails.
func syncSees(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error), addr, token, table, device string, match func(data string) bool) error {
	c := &http.Client{Transport: &http.Transport{
		DialContext:       func(ctx context.Context, network, _ string) (net.Conn, error) { return dial(ctx, network, addr) },
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/sync/stream", strings.NewReader(`{"raw_data":true,"include_checksum":true}`))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Token "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 2000))
		return fmt.Errorf("POST /sync/stream answered %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	var last *syncRow
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var line struct {
			Data *struct {
				Data []struct {
					Op         string          `json:"op"`
					ObjectType string          `json:"object_type"`
					ObjectID   string          `json:"object_id"`
					Data       json.RawMessage `json:"data"`
				} `json:"data"`
			} `json:"data"`
			CheckpointComplete json.RawMessage `json:"checkpoint_complete"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return fmt.Errorf("the sync stream sent a line that is not JSON: %w", err)
		}
		if line.Data != nil {
			for _, op := range line.Data.Data {
				if op.ObjectType != table || op.ObjectID != device {
					continue
				}
				var data string
				if err := json.Unmarshal(op.Data, &data); err != nil {
					data = string(op.Data) // raw_data ignored: nested JSON
				}
				last = &syncRow{op: op.Op, data: data}
			}
		}
		if line.CheckpointComplete != nil && last != nil && last.op == "PUT" && match(last.data) {
			return nil
		}
	}
	err = sc.Err()
	if err == nil {
		err = errors.New("the sync stream ended")
	}
	switch {
	case last == nil:
		return fmt.Errorf("no row %s of %s in the sync stream: %w", device, table, err)
	default:
		return fmt.Errorf("the sync stream's last %s of %s row %s is not the new position: %w", last.op, table, device, err)
	}
}

// samePosition reports whether a synced row's data (JSON) holds lat and
// lon.
func samePosition(lat, lon float64) func(string) bool {
	return func(data string) bool {
		var row struct {
			DeviceID string  `json:"device_id"`
			Lat      float64 `json:"lat"`
			Lon      float64 `json:"lon"`
		}
		if json.Unmarshal([]byte(data), &row) != nil {
			return false
		}
		return row.DeviceID == devicecred.VerifyDevice && abs(row.Lat-lat) < 1e-9 && abs(row.Lon-lon) < 1e-9
	}
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}
