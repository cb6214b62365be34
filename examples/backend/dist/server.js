'use strict';
// The example AccoReboot backend, for the local environment and for
// `acco verify`: it migrates its tables, subscribes to the trackers'
// positions over MQTT (QoS 1), inserts them into PostgreSQL when the broker
// does not (BACKEND_WRITES_POSITIONS=true, i.e. Mosquitto), and answers
//
//   GET /healthz                     200, or 503 unless all are true: {ok, mqtt_connected, mqtt_subscribed, database_ok}
//   GET /devices/<id>/last-position  404 {error: "not seen"} or 200 {device_id,
//                                    seen: {ts, lat, lon, spd, hdg, received_at}, stored, error}:
//                                    the last position received from <id> since start; stored is
//                                    false until its insert succeeded, null when the backend does
//                                    not write; error is that insert's error.
//
// Its environment (acco's environment file):
//   HOST, PORT                 HTTP bind (127.0.0.1, 3000)
//   DATABASE_URL               postgresql://user:pw@host:port/db?sslmode=verify-full&sslrootcert=/path/ca.pem (required)
//   MQTT_URL                   mqtt://127.0.0.1:1883; MQTT_USERNAME, MQTT_PASSWORD
//   MQTT_TOPIC                 trackers/+/position: the device id is the level at the first +
//   MQTT_SUBSCRIPTION          the filter subscribed to (MQTT_TOPIC; $share/backend/... with EMQX)
//   POSITIONS_TABLE            positions; LATEST_TABLE device_last_position; DEVICES_TABLE devices
//                              (table or schema.table, schema public by default)
//   BACKEND_WRITES_POSITIONS   true (the default: the backend inserts) or false (the broker does)
//   LOG_LEVEL                  error, warn, info (the default) or debug
//
// It runs on Node.js >= 18 (Debian 12's) with mqtt and pg bundled in
// node_modules (`make example-backend`). It never logs a password or the
// DATABASE_URL.
const http = require('http');
const crypto = require('crypto');
const os = require('os');
const mqtt = require('mqtt');
const {Pool} = require('pg');

// ---------------------------------------------------------------- settings

const LEVELS = {error: 0, warn: 1, info: 2, debug: 3};
const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const MAX_DEVICES = 10000;

const secrets = []; // strings never to print (passwords, the database URL)

function redact(s) {
  let out = String(s);
  for (const x of secrets) {
    if (x) out = out.split(x).join('***');
  }
  return out;
}

let logLevel = LEVELS.info;
function log(level, msg) {
  if (LEVELS[level] > logLevel) return;
  const line = `${level}: ${redact(msg)}`;
  if (LEVELS[level] <= LEVELS.warn) console.error(line);
  else console.log(line);
}

// errText is what an error may show: its message and SQLSTATE, never a
// connection string.
function errText(err) {
  if (!err) return 'unknown error';
  let s = err.message || String(err);
  if (err.code && typeof err.code === 'string' && !s.includes(err.code)) s += ` (${err.code})`;
  return redact(s);
}

function fatal(msg) {
  log('error', msg);
  process.exit(1);
}

function env(name, def) {
  const v = process.env[name];
  return v === undefined || v === '' ? def : v;
}

function parseBool(name, def) {
  const v = env(name, def).toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  return fatal(`${name}: want true or false, got ${JSON.stringify(v)}`);
}

// tableName quotes a table name, or schema.table, for SQL; the schema defaults to
// public (as acco's database bootstrap does).
function tableName(name, value) {
  let schema = 'public';
  let table = value;
  const dot = value.indexOf('.');
  if (dot >= 0) {
    schema = value.slice(0, dot);
    table = value.slice(dot + 1);
  }
  for (const part of [schema, table]) {
    if (part === '' || Buffer.byteLength(part) > 63 || part.includes('\0')) {
      fatal(`${name}: ${JSON.stringify(value)} is not a table name (table or schema.table, 1 to 63 bytes each)`);
    }
  }
  const q = (s) => '"' + s.replace(/"/g, '""') + '"';
  return {raw: value, schema, table, sql: `${q(schema)}.${q(table)}`, q};
}

function settings() {
  const lvl = env('LOG_LEVEL', 'info').toLowerCase();
  if (lvl in LEVELS) logLevel = LEVELS[lvl];
  else log('warn', `LOG_LEVEL: unknown level ${JSON.stringify(lvl)}, using info`);

  const s = {};
  s.host = env('HOST', '127.0.0.1');
  s.port = Number(env('PORT', '3000'));
  if (!Number.isInteger(s.port) || s.port < 0 || s.port > 65535) fatal('PORT: want a TCP port number');

  s.databaseURL = env('DATABASE_URL', '');
  if (!s.databaseURL) fatal('DATABASE_URL is not set');
  secrets.push(s.databaseURL);
  let db;
  try {
    db = new URL(s.databaseURL);
  } catch (e) {
    fatal('DATABASE_URL is not a valid URL');
  }
  if (db.password) {
    secrets.push(db.password);
    try {
      secrets.push(decodeURIComponent(db.password));
    } catch (e) { /* kept encoded */ }
  }
  for (const [k, v] of db.searchParams) {
    if (k === 'password') secrets.push(v);
  }
  // What may be logged about the database: where it is, not who logs in.
  s.databaseWhere = `${db.hostname}:${db.port || 5432}${db.pathname} (sslmode=${db.searchParams.get('sslmode') || 'default'})`;

  s.mqttURL = env('MQTT_URL', 'mqtt://127.0.0.1:1883');
  secrets.push(process.env.MQTT_PASSWORD || '');
  let m;
  try {
    m = new URL(s.mqttURL);
  } catch (e) {
    fatal('MQTT_URL is not a valid URL');
  }
  if (m.password) {
    secrets.push(m.password);
    secrets.push(s.mqttURL);
  }
  s.mqttWhere = `${m.protocol}//${m.host}`;
  s.mqttUsername = env('MQTT_USERNAME', undefined);
  s.mqttPassword = env('MQTT_PASSWORD', undefined);

  s.topic = env('MQTT_TOPIC', 'trackers/+/position');
  s.topicLevels = s.topic.split('/');
  s.deviceLevel = s.topicLevels.indexOf('+');
  if (s.deviceLevel < 0) fatal(`MQTT_TOPIC: ${JSON.stringify(s.topic)} has no + level for the device id`);
  const hash = s.topicLevels.indexOf('#');
  if (hash >= 0 && hash !== s.topicLevels.length - 1) fatal(`MQTT_TOPIC: # must be the last level of ${JSON.stringify(s.topic)}`);
  if (s.topicLevels.some((l) => l !== '+' && l !== '#' && (l.includes('+') || l.includes('#')))) {
    fatal(`MQTT_TOPIC: ${JSON.stringify(s.topic)}: + and # must fill a whole level`);
  }
  s.subscription = env('MQTT_SUBSCRIPTION', s.topic);

  s.positions = tableName('POSITIONS_TABLE', env('POSITIONS_TABLE', 'positions'));
  s.latest = tableName('LATEST_TABLE', env('LATEST_TABLE', 'device_last_position'));
  s.devices = tableName('DEVICES_TABLE', env('DEVICES_TABLE', 'devices'));
  s.writes = parseBool('BACKEND_WRITES_POSITIONS', 'true');
  return s;
}

// deviceOf returns the device id of a topic that matches the topic filter
// (the level at its first +), or null.
function deviceOf(s, topic) {
  const t = topic.split('/');
  const f = s.topicLevels;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') break;
    if (i >= t.length) return null;
    if (f[i] !== '+' && f[i] !== t[i]) return null;
  }
  if (f[f.length - 1] !== '#' && t.length !== f.length) return null;
  return t[s.deviceLevel];
}

// ---------------------------------------------------------------- state

const S = settings();
let stopping = false;
const seen = new Map(); // device id -> {seq, seen, stored, error}
const mq = {connected: false, subscribed: false};
const timers = new Set();

function sleep(ms) {
  return new Promise((resolve) => {
    const t = setTimeout(() => { timers.delete(t); resolve(); }, ms);
    timers.add(t);
  });
}

function backoff(attempt) {
  const base = Math.min(30000, 1000 * 2 ** Math.min(attempt, 5));
  return Math.round(base / 2 + Math.random() * base / 2);
}

// ---------------------------------------------------------------- database

const pool = new Pool({
  connectionString: S.databaseURL,
  max: 4,
  connectionTimeoutMillis: 5000,
  idleTimeoutMillis: 30000,
  query_timeout: 10000,
  application_name: 'acco-backend',
});
// An idle connection that breaks (server restart) must not kill the process.
pool.on('error', (err) => log('warn', `database: idle connection lost: ${errText(err)}`));

async function query(sql, params) {
  return pool.query(sql, params);
}

// Errors that mean "the database cannot be reached or used right now" (try
// again later), as opposed to a statement that fails (log and go on).
function transient(err) {
  const c = err && err.code;
  if (!c || typeof c !== 'string' || !/^[0-9A-Z]{5}$/.test(c)) return true; // network, TLS, timeout
  return /^(08|53|57|58|28|3D)/.test(c);
}

async function exists(schema, name) {
  const r = await query(
    'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2) AS e',
    [schema, name]);
  return r.rows[0].e;
}

// migrate brings the tables to what the backend needs. Every step is checked
// first, so that tables which acco's database bootstrap created (as another
// role) are left alone; a step that fails for lack of privilege is logged and
// skipped. It throws only when the database cannot be reached.
async function migrate() {
  const P = S.positions;
  const L = S.latest;
  const D = S.devices;
  let skipped = 0;
  const step = async (what, check, sql, params) => {
    try {
      const skip = await check();
      if (skip) {
        log('debug', `migration: ${what}: ${skip === true ? 'exists' : skip}`);
        return;
      }
      await query(sql, params);
      log('info', `migration: ${what}: done`);
    } catch (err) {
      if (transient(err)) throw err;
      skipped++;
      log('warn', `migration: ${what}: skipped: ${errText(err)}`);
    }
  };
  await step(`table ${D.sql}`, () => exists(D.schema, D.table), `CREATE TABLE IF NOT EXISTS ${D.sql} (
  device_id  text PRIMARY KEY,
  label      text,
  created_at timestamptz NOT NULL DEFAULT now()
)`);
  await step(`table ${P.sql}`, () => exists(P.schema, P.table), `CREATE TABLE IF NOT EXISTS ${P.sql} (
  time        timestamptz      NOT NULL,
  device_id   text             NOT NULL,
  lat         double precision NOT NULL,
  lon         double precision NOT NULL,
  speed_kmh   real,
  heading     real,
  altitude_m  real,
  accuracy_m  real,
  received_at timestamptz      NOT NULL DEFAULT now(),
  extra       jsonb
)`);
  // A hypertable where TimescaleDB is installed (and it is not one already).
  await step(`hypertable ${P.sql}`, async () => {
    const ts = await query("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'timescaledb') AS e");
    if (!ts.rows[0].e) return 'timescaledb is not installed: a plain table';
    const h = await query('SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_schema = $1 AND hypertable_name = $2) AS e', [P.schema, P.table]);
    return h.rows[0].e && 'exists';
  }, "SELECT create_hypertable($1::regclass, by_range('time', INTERVAL '1 day'), if_not_exists => TRUE)", [P.sql]);
  // Unique (device_id, time): ON CONFLICT dedupes QoS 1 redeliveries. The
  // name is the one acco's database bootstrap gives it.
  const idx = P.raw.replace(/\./g, '_').replace(/"/g, '') + '_device_time_uidx';
  await step(`index ${P.q(idx)}`, () => exists(P.schema, idx),
    `CREATE UNIQUE INDEX IF NOT EXISTS ${P.q(idx)} ON ${P.sql} (device_id, time DESC)`);
  await step(`table ${L.sql}`, () => exists(L.schema, L.table), `CREATE TABLE IF NOT EXISTS ${L.sql} (
  device_id  text PRIMARY KEY,
  time       timestamptz      NOT NULL,
  lat        double precision NOT NULL,
  lon        double precision NOT NULL,
  speed_kmh  real,
  heading    real,
  updated_at timestamptz      NOT NULL DEFAULT now()
)`);
  return skipped;
}

async function migrateForever() {
  for (let attempt = 0; !stopping; attempt++) {
    try {
      const skipped = await migrate();
      log('info', `database ${S.databaseWhere}: migrations done${skipped ? ` (${skipped} step(s) skipped, see above)` : ''}`);
      return;
    } catch (err) {
      const wait = backoff(attempt);
      log('warn', `database ${S.databaseWhere}: not reachable (${errText(err)}); migrations again in ${Math.round(wait / 1000)}s`);
      await sleep(wait);
    }
  }
}

async function databaseOK() {
  let t;
  try {
    await Promise.race([
      query('SELECT 1'),
      new Promise((resolve, reject) => { t = setTimeout(() => reject(new Error('timeout')), 3000); }),
    ]);
    return true;
  } catch (err) {
    log('debug', `health: database: ${errText(err)}`);
    return false;
  } finally {
    clearTimeout(t);
  }
}

const insertPosition = `INSERT INTO ${S.positions.sql} (time, device_id, lat, lon, speed_kmh, heading)
VALUES (to_timestamp($1::double precision / 1000.0), $2, $3, $4, $5, $6)
ON CONFLICT (device_id, time) DO NOTHING`;
const upsertLatest = `INSERT INTO ${S.latest.sql} AS cur (device_id, time, lat, lon, speed_kmh, heading)
VALUES ($2, to_timestamp($1::double precision / 1000.0), $3, $4, $5, $6)
ON CONFLICT (device_id) DO UPDATE SET time = EXCLUDED.time, lat = EXCLUDED.lat, lon = EXCLUDED.lon,
  speed_kmh = EXCLUDED.speed_kmh, heading = EXCLUDED.heading, updated_at = now()
WHERE cur.time < EXCLUDED.time`;

async function store(id, p) {
  const params = [p.ts, id, p.lat, p.lon, p.spd, p.hdg];
  const errs = [];
  for (const [what, sql] of [[S.positions.raw, insertPosition], [S.latest.raw, upsertLatest]]) {
    try {
      await query(sql, params);
    } catch (err) {
      errs.push(`${what}: ${errText(err)}`);
    }
  }
  return errs.length ? errs.join('; ') : null;
}

// ---------------------------------------------------------------- MQTT

function parsePosition(payload) {
  let p;
  try {
    p = JSON.parse(payload.toString('utf8'));
  } catch (e) {
    return {error: 'not JSON'};
  }
  if (!p || typeof p !== 'object' || Array.isArray(p)) return {error: 'not a JSON object'};
  const num = (v) => typeof v === 'number' && Number.isFinite(v);
  if (!num(p.ts) || p.ts <= 0) return {error: 'ts: want epoch milliseconds'};
  if (!num(p.lat) || p.lat < -90 || p.lat > 90) return {error: 'lat: want a number in [-90, 90]'};
  if (!num(p.lon) || p.lon < -180 || p.lon > 180) return {error: 'lon: want a number in [-180, 180]'};
  for (const k of ['spd', 'hdg']) {
    if (p[k] !== undefined && p[k] !== null && !num(p[k])) return {error: `${k}: want a number or nothing`};
  }
  return {position: {ts: p.ts, lat: p.lat, lon: p.lon, spd: num(p.spd) ? p.spd : null, hdg: num(p.hdg) ? p.hdg : null}};
}

// handle processes one message; the broker gets its PUBACK (QoS 1) once the
// position is stored or the attempt failed, one message at a time.
async function handle(topic, payload) {
  const id = deviceOf(S, topic);
  if (id === null) {
    log('debug', `mqtt: ${JSON.stringify(topic)} does not match ${S.topic}: ignored`);
    return;
  }
  if (!DEVICE_ID.test(id)) {
    log('warn', `mqtt: ${JSON.stringify(topic)}: not a valid device id: ignored`);
    return;
  }
  const {position: p, error} = parsePosition(payload);
  if (error) {
    log('warn', `mqtt: ${JSON.stringify(topic)}: bad position (${error}): ignored`);
    return;
  }
  let e = seen.get(id);
  if (!e) {
    if (seen.size >= MAX_DEVICES) seen.delete(seen.keys().next().value);
    e = {seq: 0};
    seen.set(id, e);
  }
  const seq = ++e.seq;
  e.seen = {...p, received_at: new Date().toISOString()};
  // false until the insert finishes (null: this backend does not write).
  e.stored = S.writes ? false : null;
  e.error = null;
  log('debug', `mqtt: ${id}: ts=${p.ts} lat=${p.lat} lon=${p.lon}`);
  if (!S.writes) return;
  const err = await store(id, p);
  if (err) log('warn', `database: storing a position of ${id} failed: ${err}`);
  else log('debug', `database: ${id}: position stored`);
  if (e.seq === seq) {
    e.stored = err === null;
    e.error = err;
  }
}

let client;
try {
  client = mqtt.connect(S.mqttURL, {
    // A persistent session under a stable client id: the broker keeps the
    // subscription and queues QoS 1 positions while the backend is away
    // (restarting, or reconnecting after the broker restarted), so none
    // is lost.
    clientId: `acco-backend-${os.hostname()}`.slice(0, 64),
    username: S.mqttUsername,
    password: S.mqttPassword,
    clean: false,
    keepalive: 30,
    connectTimeout: 10000,
    // acco-backend reconnects itself, with backoff (see 'close').
    reconnectPeriod: 0,
    resubscribe: false,
  });
} catch (err) {
  fatal(`MQTT_URL: ${errText(err)}`);
}
client.handleMessage = (packet, done) => {
  handle(packet.topic, packet.payload)
    .catch((err) => log('error', `mqtt: ${JSON.stringify(packet.topic)}: ${errText(err)}`))
    .then(() => done());
};

let attempts = 0;
let reconnectTimer = null;
let subscribeTimer = null;

// subscribe asks for the subscription at QoS 1 and, while connected, asks
// again later if the broker refuses it (an ACL not yet in place).
function subscribe(attempt) {
  subscribeTimer = null;
  if (stopping || !client.connected) return;
  client.subscribe(S.subscription, {qos: 1}, (err, granted) => {
    const g = granted && granted[0];
    if (!err && g && g.qos >= 0 && g.qos <= 2) {
      mq.subscribed = true;
      log('info', `mqtt: subscribed to ${S.subscription} (QoS ${g.qos})`);
      return;
    }
    mq.subscribed = false;
    const wait = backoff(attempt);
    log('error', `mqtt: subscribing to ${S.subscription} failed: ${err ? errText(err) : 'refused by the broker'}; again in ${Math.round(wait / 1000)}s`);
    if (!stopping && client.connected) subscribeTimer = setTimeout(() => subscribe(attempt + 1), wait);
  });
}

client.on('connect', () => {
  attempts = 0;
  mq.connected = true;
  log('info', `mqtt ${S.mqttWhere}: connected`);
  if (subscribeTimer) clearTimeout(subscribeTimer);
  subscribe(0);
});
client.on('close', () => {
  if (mq.connected && !stopping) log('warn', `mqtt ${S.mqttWhere}: connection lost`);
  mq.connected = false;
  mq.subscribed = false;
  if (subscribeTimer) clearTimeout(subscribeTimer);
  subscribeTimer = null;
  if (stopping || reconnectTimer) return;
  const wait = backoff(attempts++);
  log('debug', `mqtt: reconnecting in ${wait} ms`);
  reconnectTimer = setTimeout(() => {
    reconnectTimer = null;
    if (!stopping) client.reconnect();
  }, wait);
});
client.on('error', (err) => log('warn', `mqtt ${S.mqttWhere}: ${errText(err)}`));

// ---------------------------------------------------------------- HTTP

function send(res, code, body) {
  const b = JSON.stringify(body) + '\n';
  res.writeHead(code, {'content-type': 'application/json', 'content-length': Buffer.byteLength(b), 'cache-control': 'no-store'});
  res.end(res.req.method === 'HEAD' ? undefined : b);
}

async function route(req, res) {
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, {error: 'method not allowed'});
  let path;
  try {
    path = new URL(req.url, 'http://backend').pathname;
  } catch (e) {
    return send(res, 400, {error: 'bad request'});
  }
  if (path === '/healthz') {
    const database = await databaseOK();
    const ok = mq.connected && mq.subscribed && database;
    return send(res, ok ? 200 : 503, {ok, mqtt_connected: mq.connected, mqtt_subscribed: mq.subscribed, database_ok: database});
  }
  const m = /^\/devices\/([^/]+)\/last-position$/.exec(path);
  if (!m) return send(res, 404, {error: 'not found'});
  let id;
  try {
    id = decodeURIComponent(m[1]);
  } catch (e) {
    return send(res, 400, {error: 'invalid device id'});
  }
  if (!DEVICE_ID.test(id)) return send(res, 400, {error: 'invalid device id'});
  const e = seen.get(id);
  if (!e || !e.seen) return send(res, 404, {error: 'not seen'});
  return send(res, 200, {device_id: id, seen: e.seen, stored: e.stored, error: e.error});
}

const server = http.createServer((req, res) => {
  route(req, res).catch((err) => {
    log('error', `http: ${errText(err)}`);
    if (!res.headersSent) send(res, 500, {error: 'internal error'});
  });
});
server.on('error', (err) => fatal(`http: listening on ${S.host}:${S.port}: ${errText(err)}`));
server.listen(S.port, S.host, () => {
  log('info', `acco example backend listening on ${S.host}:${server.address().port}; mqtt ${S.mqttWhere} subscription ${S.subscription}; database ${S.databaseWhere}; ` +
    `positions ${S.positions.sql}, latest ${S.latest.sql}, ${S.writes ? 'the backend writes positions' : 'the broker writes positions (the backend reads)'}`);
});

migrateForever().catch((err) => log('error', `migrations: ${errText(err)}`));

// ---------------------------------------------------------------- shutdown

function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  log('info', `${signal}: stopping`);
  const force = setTimeout(() => {
    log('warn', 'shutdown took more than 5s: exiting anyway');
    process.exit(0);
  }, 5000);
  force.unref();
  for (const t of timers) clearTimeout(t);
  if (reconnectTimer) clearTimeout(reconnectTimer);
  if (subscribeTimer) clearTimeout(subscribeTimer);
  const httpDone = new Promise((resolve) => {
    server.close(() => { log('debug', 'shutdown: http closed'); resolve(); });
    if (server.closeAllConnections) server.closeAllConnections();
  });
  const mqttDone = new Promise((resolve) => client.end(false, {}, () => { log('debug', 'shutdown: mqtt closed'); resolve(); }));
  Promise.allSettled([httpDone, mqttDone])
    .then(() => pool.end())
    .then(() => log('debug', 'shutdown: database pool closed'))
    .catch((err) => log('warn', `shutdown: ${errText(err)}`))
    .then(() => {
      log('info', 'stopped');
      process.exit(0);
    });
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('unhandledRejection', (err) => log('error', `unhandled: ${errText(err)}`));
