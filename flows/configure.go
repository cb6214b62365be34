package flows

import (
	"context"
	"errors"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/accoreboot/acco/configure"

	"github.com/accoreboot/acco/internal/spec"
)

// Target returns what the services host (at ipv4) should have: the
// services' files, packages and units, the database bootstrap (when the
// admin logins are known) and, with Mosquitto, the password file made from
// the device table, read through the host once connected.
func (s *Session) Target(in *Inputs, ipv4 string, opts configure.ServicesOptions) (configure.Target, error) {
	env := s.Env
	// Rendered now too, so that a bad input fails before connecting.
	desired, err := configure.Services(env, in.Templates, opts)
	if err != nil {
		return configure.Target{}, err
	}
	t := configure.Target{Host: configure.ServicesHost(env, ipv4), Desired: desired}
	if in.Admins != nil {
		t.Database = configure.BootstrapStep(env, in.Admins, in.MQTTUsers)
		if env.Services.Broker == spec.BrokerMosquitto {
			t.Prepare = s.withDeviceTable(in, opts, nil)
		}
	}
	return t, nil
}

// withDeviceTable returns a configure Prepare step that reads the device
// table through the host (after making acco's own rows, unless check) and
// renders the services with its rows; keep, when set, trims the result.
func (s *Session) withDeviceTable(in *Inputs, opts configure.ServicesOptions, keep func(configure.Desired) configure.Desired) func(context.Context, configure.DialFunc, bool) (configure.Desired, []configure.DBStep, error) {
	return func(ctx context.Context, dial configure.DialFunc, check bool) (configure.Desired, []configure.DBStep, error) {
		dt, err := configure.DeviceTable(ctx, dial, s.Env, in.Admins)
		if err != nil {
			return configure.Desired{}, nil, err
		}
		defer dt.Close(ctx)
		var steps []configure.DBStep
		if !check {
			if steps, err = dt.Ensure(ctx, in.MQTTUsers, false); err != nil {
				return configure.Desired{}, steps, err
			}
		}
		users, err := dt.Users(ctx)
		if err != nil && !errors.Is(err, configure.ErrNoDeviceTable) {
			return configure.Desired{}, steps, err
		}
		ti := in.Templates
		ti.MQTTUsers = users
		d, err := configure.Services(s.Env, ti, opts)
		if err != nil {
			return configure.Desired{}, steps, err
		}
		if keep != nil {
			d = keep(d)
		}
		return d, steps, nil
	}
}

// ConfigureOptions tune Session.Configure.
type ConfigureOptions struct {
	// Check changes nothing and records nothing: it shows what a run would
	// do (owed restarts included).
	Check bool
	// Diff adds the files' unified diffs, secrets masked.
	Diff bool
	// Services tune the rendering (the backend artifact, offline mode).
	Services configure.ServicesOptions
	// ConnectWait is how long a refused SSH connection is retried.
	ConnectWait time.Duration
	// Notes, when set, is told what the operator should know before the
	// host is reached.
	Notes func(string)
	// Events receives configure's progress.
	Events func(configure.Event)
	// Inputs, when set, is shown the inputs read from state (to tell
	// whether the database admins are recorded yet).
	Inputs func(*Inputs)
}

// Configure configures the services host (or, with Check, plans it): the
// instance and its address from state, the inputs and secrets sealed in
// state, the SSH connection checked against the pinned keys or the
// instance's console. It is acco configure and the host phase of deploy.
func (s *Session) Configure(ctx context.Context, signer ssh.Signer, opts ConfigureOptions) ([]*configure.Result, error) {
	inst, ipv4, err := s.Instance()
	if err != nil {
		return nil, err
	}
	in, err := s.Inputs(ctx)
	if err != nil {
		return nil, err
	}
	target, err := s.Target(in, ipv4, opts.Services)
	if err != nil {
		return nil, err
	}
	masked := in.Secrets()
	conn := s.Connector(signer, inst.ID, opts.ConnectWait, masked)
	if opts.Inputs != nil {
		opts.Inputs(in)
	}
	if opts.Notes != nil {
		for _, n := range in.Notes {
			opts.Notes(n)
		}
	}
	journal := &configure.StateJournal{State: s.State, Save: s.Save}
	if opts.Check || s.ReadOnly {
		journal.Save = nil // --check records nothing; owed restarts are still shown
	}
	return configure.Run(ctx, conn, []configure.Target{target}, configure.Options{
		Check:         opts.Check,
		Diff:          opts.Diff,
		Journal:       journal,
		Secrets:       masked,
		HealthTimeout: s.Env.Services.HealthTimeout,
		Events:        opts.Events,
	})
}
