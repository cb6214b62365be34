package flows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/accoreboot/acco/configure"
	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/provision"
	"github.com/accoreboot/acco/state"
)

// Session is one environment opened for a flow: its YAML, its state (read
// under the lock the caller holds) and the way state is written back.
type Session struct {
	Env     *spec.Environment
	Store   *state.Store
	State   *state.State
	Sealer  *state.Sealer
	Clients provision.Clients
	// ReadOnly records nothing (configure --check, verify): secrets that
	// are missing are generated for the run only, pins are not written.
	ReadOnly bool
	// Now is the clock of the times recorded in state (nil: time.Now).
	Now func() time.Time

	mu   sync.Mutex
	etag string
}

// Open reads the state of env from store.
func Open(ctx context.Context, env *spec.Environment, store *state.Store, sealer *state.Sealer, clients provision.Clients, readOnly bool) (*Session, error) {
	if sealer == nil {
		return nil, withHint(errors.New("ACCO_STATE_KEY is not set: the secrets acco needs are sealed in state"),
			"export ACCO_STATE_KEY (the same key every operator of %s uses)", env.Name)
	}
	s := &Session{Env: env, Store: store, Sealer: sealer, Clients: clients, ReadOnly: readOnly}
	var err error
	s.State, s.etag, err = store.Read(ctx, env.Name)
	if errors.Is(err, state.ErrNotFound) {
		return nil, withHint(fmt.Errorf("%s has no state yet: there is no host to configure", env.Name), "create the environment first: acco apply %s", env.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the state of %s: %w", env.Name, err)
	}
	// Sealed values are bound to the environment and the state's lineage.
	s.Sealer = sealer.For(s.State.Env, s.State.Lineage)
	return s, nil
}

// Save writes the state back (serialised: pins, secrets and owed restarts
// may be recorded from several goroutines).
func (s *Session) Save(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	etag, err := s.Store.Write(context.WithoutCancel(ctx), s.Env.Name, s.State, s.etag)
	if err != nil {
		return fmt.Errorf("writing the state of %s: %w", s.Env.Name, err)
	}
	s.etag = etag
	return nil
}

// saver is Save, or nil when the session records nothing.
func (s *Session) saver() func(context.Context) error {
	if s.ReadOnly {
		return nil
	}
	return s.Save
}

// Secrets reads and records the secrets sealed in state.
func (s *Session) Secrets() *configure.StateSecrets {
	return &configure.StateSecrets{State: s.State, Sealer: s.Sealer, Save: s.saver(), Check: s.ReadOnly}
}

// Instance returns (a copy of) the services host's instance in state and
// its IPv4 address.
func (s *Session) Instance() (state.Resource, string, error) {
	addr := spec.Address(spec.KindInstance, s.Env.Services.Host)
	r, ok := s.State.Resource(addr)
	if !ok {
		return state.Resource{}, "", withHint(fmt.Errorf("%s is not in the state of %s", addr, s.Env.Name), "create it first: acco apply %s", s.Env.Name)
	}
	inst := *r
	ipv4, _ := inst.Attributes["ipv4"].(string)
	if inst.Status == state.StatusTainted || ipv4 == "" {
		return state.Resource{}, "", withHint(fmt.Errorf("%s has no address in state yet (its creation did not finish)", addr), "finish it first: acco apply %s", s.Env.Name)
	}
	return inst, ipv4, nil
}

// Connector returns the SSH connector to the services host: keys pinned
// in state (pinned on first contact unless ReadOnly), first contact checked
// against the instance's console read through Nova. retry is how long a
// refused connection is retried (a booting host).
func (s *Session) Connector(signer ssh.Signer, instanceID string, retry time.Duration, secrets []string) *configure.SSHConnector {
	return &configure.SSHConnector{
		Signer: signer,
		Keys:   &configure.StateKeys{State: s.State, Save: s.saver()},
		Console: configure.ConsoleFunc(func(ctx context.Context, _ string) (string, error) {
			return s.Clients.Compute.ConsoleOutput(ctx, instanceID, 0)
		}),
		Retry:   retry,
		Secrets: secrets,
	}
}

// attrInt reads a number attribute of state (json.Number once decoded).
func attrInt(v any) int {
	switch n := v.(type) {
	case json.Number:
		i, _ := strconv.Atoi(n.String())
		return i
	case float64:
		return int(n)
	case int:
		return n
	}
	return 0
}
