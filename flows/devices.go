package flows

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/accoreboot/acco/configure"
	"github.com/accoreboot/acco/internal/devicecred"
	"github.com/accoreboot/acco/internal/spec"
)

// Devices is the device table of an environment, reached through its
// services host, for acco device add|list|remove.
type Devices struct {
	s      *Session
	in     *Inputs
	runner configure.Runner
	host   configure.Host
	table  *configure.DeviceDB
}

// OpenDevices connects to the services host (keys checked as configure
// does) and through it to the device table, as the cluster's admin.
func (s *Session) OpenDevices(ctx context.Context, signer ssh.Signer, connectWait time.Duration) (*Devices, error) {
	f := s.Env.DataFlow()
	if f == nil || !f.HasDevices {
		return nil, withHint(fmt.Errorf("%s keeps no device table", s.Env.Name),
			"with broker emqx, set services.emqx.device_auth.backend: postgresql and its postgres (see environments/defaults.yaml)")
	}
	inst, ipv4, err := s.Instance()
	if err != nil {
		return nil, err
	}
	in, err := s.Inputs(ctx)
	if err != nil {
		return nil, err
	}
	if in.Admins == nil {
		return nil, withHint(fmt.Errorf("the device table of %s is not there yet", s.Env.Name), "create it: acco configure %s", s.Env.Name)
	}
	host := configure.ServicesHost(s.Env, ipv4)
	r, err := s.Connector(signer, inst.ID, connectWait, in.Secrets()).Connect(ctx, host)
	if err != nil {
		return nil, err
	}
	dt, err := configure.DeviceTable(ctx, r.DialContext, s.Env, in.Admins)
	if err != nil {
		r.Close()
		return nil, err
	}
	return &Devices{s: s, in: in, runner: r, host: host, table: dt}, nil
}

// Close closes the database and SSH connections.
func (d *Devices) Close(ctx context.Context) {
	d.table.Close(ctx)
	d.runner.Close()
}

// AddedDevice is what acco device add returns: the password, once.
type AddedDevice struct {
	Name     string `json:"name"`
	Password string `json:"password"`
	// Topic is the topic the device publishes its positions to.
	Topic string `json:"topic"`
	// Broker is host:port of the broker's plain MQTT listener.
	Broker string `json:"broker,omitempty"`
}

// Add registers a tracker with a new random password and returns it; the
// device table keeps only its hash. With Mosquitto the host's password file
// is rewritten and Mosquitto told to re-read it.
func (d *Devices) Add(ctx context.Context, name string) (*AddedDevice, error) {
	if err := devicecred.ValidName(name); err != nil {
		return nil, err
	}
	if devicecred.Reserved(name) {
		return nil, fmt.Errorf("%s is an MQTT user acco manages itself: choose another name", name)
	}
	pw, err := devicecred.NewPassword()
	if err != nil {
		return nil, err
	}
	h, err := devicecred.New(pw)
	if err != nil {
		return nil, err
	}
	if err := d.table.Add(ctx, name, h); err != nil {
		if errors.Is(err, configure.ErrDeviceExists) {
			return nil, withHint(fmt.Errorf("device %s is already registered", name), "to give it a new password: acco device remove %s %s, then add it again", d.s.Env.Name, name)
		}
		if errors.Is(err, configure.ErrNoDeviceTable) {
			return nil, withHint(err, "create it: acco configure %s", d.s.Env.Name)
		}
		return nil, fmt.Errorf("adding device %s: %w", name, err)
	}
	if err := d.syncBroker(ctx); err != nil {
		return nil, fmt.Errorf("device %s is registered, but the broker was not told: %w", name, err)
	}
	f := d.s.Env.DataFlow()
	out := &AddedDevice{Name: name, Password: pw, Topic: deviceTopic(f.Topic, name)}
	if p := spec.ReachablePlainMQTTPort(d.s.Env.BrokerListeners()); p != 0 {
		out.Broker = net.JoinHostPort(d.host.Address, fmt.Sprint(p))
	}
	return out, nil
}

// List returns the device table's rows, without hashes.
func (d *Devices) List(ctx context.Context) ([]configure.Device, error) {
	l, err := d.table.List(ctx)
	if errors.Is(err, configure.ErrNoDeviceTable) {
		return nil, withHint(err, "create it: acco configure %s", d.s.Env.Name)
	}
	return l, err
}

// Remove deletes a device's credential (its past positions stay) and, with
// Mosquitto, tells the broker. Removing acco's own verification device is
// allowed (acco configure makes it again); the backend's login is not.
func (d *Devices) Remove(ctx context.Context, name string) error {
	if name == devicecred.BackendUser {
		return fmt.Errorf("%s is the backend's MQTT login: removing it would cut the backend off", name)
	}
	ok, err := d.table.Remove(ctx, name)
	if err != nil {
		return fmt.Errorf("removing device %s: %w", name, err)
	}
	if !ok {
		return withHint(fmt.Errorf("no device %s in the device table of %s", name, d.s.Env.Name), "acco device list %s shows them", d.s.Env.Name)
	}
	if err := d.syncBroker(ctx); err != nil {
		return fmt.Errorf("device %s is removed from the table, but the broker was not told: %w", name, err)
	}
	return nil
}

// syncBroker rewrites Mosquitto's password file from the device table
// (EMQX reads the table itself).
func (d *Devices) syncBroker(ctx context.Context) error {
	if d.s.Env.Services.Broker != spec.BrokerMosquitto {
		return nil
	}
	in := *d.in
	in.MQTTUsers = nil // only the table's rows; acco's own are made by configure
	opts := configure.ServicesOptions{NoArtifact: true, Offline: d.s.Env.Services.Offline}
	passwdOnly := func(all configure.Desired) configure.Desired {
		var out configure.Desired
		for _, f := range all.Files {
			if f.Path == configure.MosquittoPasswdPath {
				out.Files = append(out.Files, f)
			}
		}
		return out
	}
	t := configure.Target{Host: d.host, Prepare: d.s.withDeviceTable(&in, opts, passwdOnly)}
	_, err := configure.Run(ctx, sharedConnector{d.runner}, []configure.Target{t}, configure.Options{
		Journal: &configure.StateJournal{State: d.s.State},
		Secrets: d.in.Secrets(),
	})
	return err
}

// sharedConnector hands out one open connection, which Close leaves open.
type sharedConnector struct{ r configure.Runner }

func (c sharedConnector) Connect(context.Context, configure.Host) (configure.Runner, error) {
	return keepOpen{c.r}, nil
}

type keepOpen struct{ configure.Runner }

func (keepOpen) Close() error { return nil }

var _ io.Closer = keepOpen{}

// deviceTopic is the topic a device publishes to: the filter with its first
// + replaced by the device's name.
func deviceTopic(filter, name string) string {
	for i := 0; i < len(filter); i++ {
		if filter[i] == '+' {
			return filter[:i] + name + filter[i+1:]
		}
	}
	return filter
}
