package configure

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/accoreboot/acco/internal/devicecred"
	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/templates"
)

// ErrNoDeviceTable tells that the device table does not exist yet: the
// first acco configure creates it.
var ErrNoDeviceTable = errors.New("the device table does not exist yet")

// Device is a row of the device table, without its hash.
type Device struct {
	Name      string    `json:"name"`
	Kind      string    `json:"kind"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// DeviceTable opens the device table of env's data flow as the cluster's
// admin, over dial. Close it when done.
func DeviceTable(ctx context.Context, dial DialFunc, env *spec.Environment, admins map[string]DBAdmin) (*DeviceDB, error) {
	f := env.DataFlow()
	if f == nil || !f.HasDevices {
		return nil, errors.New("this environment keeps no device table: with broker emqx, set services.emqx.device_auth.backend: postgresql (and its postgres)")
	}
	admin, ok := admins[f.Devices.Cluster]
	if !ok {
		return nil, fmt.Errorf("database %s: no admin credentials in state (run acco configure %s first)", f.Devices.Cluster, env.Name)
	}
	conn, err := connectDB(ctx, dial, admin, f.Devices.Database)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s/%s: %w", f.Devices.Cluster, f.Devices.Database, err)
	}
	return &DeviceDB{conn: conn, addr: spec.Address(spec.KindDatabaseDB, f.Devices.Cluster, f.Devices.Database)}, nil
}

// DeviceDB is an open connection to the device table.
type DeviceDB struct {
	conn *pgx.Conn
	addr string
}

// Close closes the connection.
func (d *DeviceDB) Close(ctx context.Context) { d.conn.Close(context.WithoutCancel(ctx)) }

func (d *DeviceDB) table() string { return qi("public", devicecred.Table) }

// noTable turns "relation does not exist" into ErrNoDeviceTable.
func noTable(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42P01" {
		return ErrNoDeviceTable
	}
	return err
}

// Ensure creates the device table and makes acco's MQTT users' rows match
// their passwords, as the bootstrap does (nothing changes in check mode).
func (d *DeviceDB) Ensure(ctx context.Context, mqttUsers map[string]string, check bool) ([]DBStep, error) {
	b := &dbBootstrap{conn: d.conn, check: check, addr: d.addr}
	err := b.deviceTable(ctx, mqttUsers)
	return b.steps, err
}

// Users returns every row's name and hash, sorted by name: what Mosquitto's
// password file is made from.
func (d *DeviceDB) Users(ctx context.Context) ([]templates.MQTTUser, error) {
	rows, err := d.conn.Query(ctx, "SELECT username, password_hash, salt FROM "+d.table()+" ORDER BY username")
	if err != nil {
		return nil, noTable(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (templates.MQTTUser, error) {
		var u templates.MQTTUser
		err := r.Scan(&u.Name, &u.Hash.PasswordHash, &u.Hash.Salt)
		return u, err
	})
}

// List returns the rows without their hashes, sorted by name.
func (d *DeviceDB) List(ctx context.Context) ([]Device, error) {
	rows, err := d.conn.Query(ctx, "SELECT username, kind, created_at, updated_at FROM "+d.table()+" ORDER BY username")
	if err != nil {
		return nil, noTable(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Device, error) {
		var v Device
		err := r.Scan(&v.Name, &v.Kind, &v.CreatedAt, &v.UpdatedAt)
		return v, err
	})
}

// ErrDeviceExists tells that a device of that name is already registered.
var ErrDeviceExists = errors.New("a device of that name exists")

// Add registers a tracker: its row in the device table (hash only) and its
// row in the devices table the apps see, in one transaction.
func (d *DeviceDB) Add(ctx context.Context, name string, h devicecred.Hash) error {
	tx, err := d.conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	tag, err := tx.Exec(ctx, "INSERT INTO "+d.table()+" (username, password_hash, salt, is_superuser, kind) VALUES ($1, $2, $3, false, 'device') ON CONFLICT (username) DO NOTHING",
		name, h.PasswordHash, h.Salt)
	if err != nil {
		return noTable(err)
	}
	if tag.RowsAffected() == 0 {
		return ErrDeviceExists
	}
	if _, err := tx.Exec(ctx, "INSERT INTO "+qi("public", spec.DevicesTable)+" (device_id) VALUES ($1) ON CONFLICT (device_id) DO NOTHING", name); err != nil {
		return fmt.Errorf("%s: %w", spec.DevicesTable, noTable(err))
	}
	return tx.Commit(ctx)
}

// Remove deletes a device's credential (its positions and its row in the
// devices table stay: they are the apps' history). It reports whether
// there was one.
func (d *DeviceDB) Remove(ctx context.Context, name string) (bool, error) {
	tag, err := d.conn.Exec(ctx, "DELETE FROM "+d.table()+" WHERE username = $1", name)
	if err != nil {
		return false, noTable(err)
	}
	return tag.RowsAffected() > 0, nil
}
