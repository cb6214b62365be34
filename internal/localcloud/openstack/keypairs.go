package openstack

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"

	"golang.org/x/crypto/ssh"
)

// keypairNamePattern is the key pair name Nova accepts before 2.92.
var keypairNamePattern = regexp.MustCompile(`^[a-zA-Z0-9 _-]+$`)

// keypairBody is a key pair as Nova shows it; full adds the fields of GET
// by name.
func (c *Cloud) keypairBody(req *request, k *keypair, full bool) map[string]any {
	m := map[string]any{"name": k.Name, "public_key": k.PublicKey, "fingerprint": k.Fingerprint}
	if req.mv.atLeast(2) {
		m["type"] = k.Type
	}
	if full {
		m["user_id"] = req.tok.Project.UserID()
		m["id"] = k.ID
		m["created_at"] = k.Created.Format(novaTimeMicros)
		m["deleted"] = false
		m["deleted_at"] = nil
		m["updated_at"] = nil
	}
	return m
}

// findKeypair returns the caller's key pair of a name in the region.
func (c *Cloud) findKeypair(req *request, name string) *keypair {
	for _, k := range c.st.Keypairs {
		if k.Name == name && k.Project == req.tok.Project.ID && k.Region == req.region {
			return k
		}
	}
	return nil
}

func (c *Cloud) serveKeypairs(req *request) *response {
	segs := req.segs[1:]
	if len(segs) == 0 {
		switch req.method() {
		case http.MethodGet:
			var mine []*keypair
			for _, k := range c.st.Keypairs {
				if k.Project == req.tok.Project.ID && k.Region == req.region {
					mine = append(mine, k)
				}
			}
			sort.Slice(mine, func(i, j int) bool { return mine[i].Name < mine[j].Name })
			out := []any{}
			for _, k := range mine {
				out = append(out, map[string]any{"keypair": c.keypairBody(req, k, false)})
			}
			return jsonResp(http.StatusOK, map[string]any{"keypairs": out})
		case http.MethodPost:
			return c.createKeypair(req)
		}
		return methodNotAllowed("GET", "POST")
	}
	if len(segs) != 1 {
		return novaError(http.StatusNotFound, "The resource could not be found.")
	}
	name := segs[0]
	k := c.findKeypair(req, name)
	if k == nil {
		return novaError(http.StatusNotFound, "Keypair %s not found for user %s", name, req.tok.Project.UserID())
	}
	switch req.method() {
	case http.MethodGet:
		return jsonResp(http.StatusOK, map[string]any{"keypair": c.keypairBody(req, k, true)})
	case http.MethodDelete:
		c.st.Keypairs = slices.DeleteFunc(c.st.Keypairs, func(x *keypair) bool { return x == k })
		c.dirty = true
		if req.mv.atLeast(2) {
			return noContent()
		}
		return &response{status: http.StatusAccepted}
	}
	return methodNotAllowed("GET", "DELETE")
}

// createKeypair serves POST /os-keypairs: import a public key, or generate
// an RSA key pair and return its private key once.
func (c *Cloud) createKeypair(req *request) *response {
	var body struct {
		Keypair *struct {
			Name      string  `json:"name"`
			PublicKey *string `json:"public_key"`
			Type      string  `json:"type"`
			UserID    string  `json:"user_id"`
		} `json:"keypair"`
	}
	if err := req.decode(&body); err != nil {
		return novaError(http.StatusBadRequest, "%s", err.Error())
	}
	kp := body.Keypair
	switch {
	case kp == nil:
		return novaError(http.StatusBadRequest, "Invalid input for field/attribute keypair. Value: None. 'keypair' is a required property")
	case kp.Name == "" || len(kp.Name) > 255 || !keypairNamePattern.MatchString(kp.Name) || strings.TrimSpace(kp.Name) != kp.Name:
		return novaError(http.StatusBadRequest, "Invalid input for field/attribute name. Value: %s. Keypair name contains unsafe characters, or is empty or too long", kp.Name)
	case kp.Type != "" && !req.mv.atLeast(2):
		return novaError(http.StatusBadRequest, "Invalid input for field/attribute keypair. Additional properties are not allowed ('type' was unexpected)")
	case kp.Type != "" && kp.Type != "ssh" && kp.Type != "x509":
		return novaError(http.StatusBadRequest, "Invalid input for field/attribute type. Value: %s. '%s' is not one of ['ssh', 'x509']", kp.Type, kp.Type)
	case kp.Type == "x509":
		return novaError(http.StatusBadRequest, "Keypair data is invalid: x509 key pairs are not offered by this cloud")
	case kp.UserID != "" && kp.UserID != req.tok.Project.UserID():
		return novaError(http.StatusForbidden, "Policy doesn't allow os_compute_api:os-keypairs:create to be performed.")
	}
	if c.findKeypair(req, kp.Name) != nil {
		return novaError(http.StatusConflict, "Key pair '%s' already exists.", kp.Name)
	}
	k := &keypair{
		scope:   scope{Project: req.tok.Project.ID, Region: req.region},
		Name:    kp.Name,
		Type:    "ssh",
		Created: c.now(),
	}
	private := ""
	if kp.PublicKey != nil {
		pub, comment, _, _, err := ssh.ParseAuthorizedKey([]byte(*kp.PublicKey))
		if err != nil {
			return novaError(http.StatusBadRequest, "Keypair data is invalid: failed to generate fingerprint")
		}
		k.PublicKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
		if comment != "" {
			k.PublicKey += " " + comment
		}
		k.Fingerprint = ssh.FingerprintLegacyMD5(pub)
	} else {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return novaError(http.StatusInternalServerError, "generate key pair: %v", err)
		}
		pub, err := ssh.NewPublicKey(&key.PublicKey)
		if err != nil {
			return novaError(http.StatusInternalServerError, "generate key pair: %v", err)
		}
		k.PublicKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + " Generated-by-Nova"
		k.Fingerprint = ssh.FingerprintLegacyMD5(pub)
		private = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	}
	c.st.KeypairSeq++
	k.ID = c.st.KeypairSeq
	c.st.Keypairs = append(c.st.Keypairs, k)
	c.dirty = true
	out := c.keypairBody(req, k, false)
	out["user_id"] = req.tok.Project.UserID()
	if private != "" {
		out["private_key"] = private
	}
	status := http.StatusOK
	if req.mv.atLeast(2) {
		status = http.StatusCreated
	}
	return jsonResp(status, map[string]any{"keypair": out})
}
