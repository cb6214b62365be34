package spec

// The data flow of an environment: where tracker positions go and where
// device credentials live, whichever broker runs.

// DefaultPositionsTopic is the tracker topic filter when the YAML names
// none (the Mosquitto broker); the device's name is the level at its +.
const DefaultPositionsTopic = "trackers/+/position"

// Default tables of the positions when the YAML names none (Mosquitto).
const (
	DefaultPositionsTable = "positions"
	DefaultLatestTable    = "device_last_position"
	// DevicesTable is the devices table the apps see (PowerSync publishes
	// it); it never holds credentials.
	DevicesTable = "devices"
)

// Flow is where the positions of an environment's trackers go.
type Flow struct {
	// Topic is the topic filter trackers publish to.
	Topic string
	// DB is the logical database of the positions tables (the user is the
	// writer: EMQX's action user, or the backend's user with Mosquitto).
	DB PostgresRef
	// Table and LatestTable are the positions hypertable and the latest
	// position table ("" when there is none).
	Table, LatestTable string
	// BackendWrites is true when the backend inserts the positions (the
	// Mosquitto broker has no SQL sink); with EMQX its rule does.
	BackendWrites bool
	// Devices is the logical database of the device table (mqtt_users),
	// and whether there is one: EMQX with device_auth.backend
	// built_in_database keeps its users in the broker instead.
	Devices    PostgresRef
	HasDevices bool
}

// DataFlow returns the environment's flow, or nil when it has neither an
// EMQX positions rule nor a backend to write positions.
func (e *Environment) DataFlow() *Flow {
	s := e.Services
	switch {
	case s.Broker == BrokerEMQX && s.EMQX != nil && s.EMQX.Positions != nil:
		p := s.EMQX.Positions
		f := &Flow{Topic: p.Topic, DB: p.Postgres, Table: p.Table, LatestTable: p.LatestTable}
		if d := s.EMQX.DeviceAuth; d.Backend == "postgresql" && d.Postgres != nil {
			f.Devices, f.HasDevices = *d.Postgres, true
		}
		return f
	case s.Broker == BrokerMosquitto && s.Backend != nil:
		return &Flow{
			Topic: DefaultPositionsTopic, DB: s.Backend.Postgres,
			Table: DefaultPositionsTable, LatestTable: DefaultLatestTable,
			BackendWrites: true, Devices: s.Backend.Postgres, HasDevices: true,
		}
	}
	return nil
}

// BrokerListeners returns the MQTT listeners of the environment's broker
// (nil when it has none).
func (e *Environment) BrokerListeners() map[string]*Listener {
	switch s := e.Services; {
	case s.Broker == BrokerEMQX && s.EMQX != nil:
		return s.EMQX.Listeners
	case s.Broker == BrokerMosquitto && s.Mosquitto != nil:
		return s.Mosquitto.Listeners
	}
	return nil
}

// PlainMQTTPort is the lowest port of the plain (tcp) listeners in ls, 0
// when there is none.
func PlainMQTTPort(ls map[string]*Listener) int {
	best := 0
	for _, l := range ls {
		if l != nil && l.Type == "tcp" && (best == 0 || l.Port < best) {
			best = l.Port
		}
	}
	return best
}
