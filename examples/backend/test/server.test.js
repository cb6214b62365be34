'use strict';
// Tests of dist/server.js, run as a process: `npm test` (after npm ci).
//
// Without services: the HTTP answers when neither the broker nor the
// database can be reached, and a clean SIGTERM. With TEST_DATABASE_URL (a
// database the role may create tables in) and mosquitto on PATH: the whole
// flow, from a published position to its rows and /devices/<id>/last-position.
const test = require('node:test');
const assert = require('node:assert');
const {spawn, spawnSync} = require('node:child_process');
const net = require('node:net');
const path = require('node:path');
const crypto = require('node:crypto');

const SERVER = path.join(__dirname, '..', 'dist', 'server.js');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const {port} = s.address();
      s.close(() => resolve(port));
    });
  });
}

function start(env) {
  const p = spawn(process.execPath, [SERVER], {env: {PATH: process.env.PATH, ...env}, stdio: ['ignore', 'pipe', 'pipe']});
  p.output = '';
  p.stdout.on('data', (d) => { p.output += d; });
  p.stderr.on('data', (d) => { p.output += d; });
  p.exited = new Promise((resolve) => p.on('exit', (code, signal) => resolve({code, signal})));
  return p;
}

async function stop(p) {
  const t0 = Date.now();
  p.kill('SIGTERM');
  const r = await p.exited;
  return {...r, ms: Date.now() - t0};
}

async function get(port, p) {
  for (let i = 0; ; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}${p}`);
      return {status: r.status, body: await r.json()};
    } catch (e) {
      if (i >= 50) throw e;
      await sleep(100);
    }
  }
}

async function until(what, f, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

test('without broker or database: 503, 404, 400, clean SIGTERM, no secret printed', async () => {
  const [port, dead] = [await freePort(), await freePort()];
  const p = start({
    PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'debug',
    DATABASE_URL: `postgresql://backend:db-S3CRET@127.0.0.1:${dead}/acco?sslmode=disable`,
    MQTT_URL: `mqtt://127.0.0.1:${dead}`, MQTT_USERNAME: 'backend', MQTT_PASSWORD: 'mqtt-S3CRET',
  });
  try {
    const h = await get(port, '/healthz');
    assert.strictEqual(h.status, 503);
    assert.deepStrictEqual(h.body, {ok: false, mqtt_connected: false, mqtt_subscribed: false, database_ok: false});
    assert.deepStrictEqual(await get(port, '/devices/trk-1/last-position'), {status: 404, body: {error: 'not seen'}});
    for (const id of ['a%2Fb', '%E0%A4%A', '-x', 'x'.repeat(65), 'a%20b']) {
      assert.strictEqual((await get(port, `/devices/${id}/last-position`)).status, 400, id);
    }
    assert.strictEqual((await get(port, '/nope')).status, 404);
  } finally {
    const r = await stop(p);
    assert.strictEqual(r.code, 0, p.output);
    assert.ok(r.ms < 5000, `stopped in ${r.ms} ms`);
  }
  assert.doesNotMatch(p.output, /S3CRET/);
  assert.doesNotMatch(p.output, /postgresql:\/\//);
});

test('bad settings exit 1 with a message', async () => {
  for (const [env, msg] of [
    [{}, /DATABASE_URL is not set/],
    [{DATABASE_URL: 'postgresql://x@127.0.0.1/acco', MQTT_TOPIC: 'trackers/position'}, /MQTT_TOPIC/],
    [{DATABASE_URL: 'postgresql://x@127.0.0.1/acco', BACKEND_WRITES_POSITIONS: 'maybe'}, /BACKEND_WRITES_POSITIONS/],
  ]) {
    const p = start({PORT: '0', ...env});
    const r = await p.exited;
    assert.strictEqual(r.code, 1, p.output);
    assert.match(p.output, msg);
  }
});

const mosquitto = spawnSync('sh', ['-c', 'command -v mosquitto'], {encoding: 'utf8'}).stdout.trim();
const skip = !process.env.TEST_DATABASE_URL ? 'TEST_DATABASE_URL is not set' : !mosquitto ? 'no mosquitto on PATH' : false;

test('a published position: rows, last-position, duplicates and older positions', {skip}, async (t) => {
  const {Pool} = require('pg');
  const mqtt = require('mqtt');
  const [port, mport] = [await freePort(), await freePort()];
  const broker = spawn(mosquitto, ['-p', String(mport)], {stdio: 'ignore'});
  t.after(() => broker.kill('SIGTERM'));
  const suffix = crypto.randomBytes(4).toString('hex');
  const positions = `test_positions_${suffix}`;
  const latest = `test_latest_${suffix}`;
  const devices = `test_devices_${suffix}`;
  const pool = new Pool({connectionString: process.env.TEST_DATABASE_URL});
  t.after(async () => {
    await pool.query(`DROP TABLE IF EXISTS "${positions}", "${latest}", "${devices}"`);
    await pool.end();
  });
  const p = start({
    PORT: String(port), DATABASE_URL: process.env.TEST_DATABASE_URL, MQTT_URL: `mqtt://127.0.0.1:${mport}`,
    POSITIONS_TABLE: positions, LATEST_TABLE: latest, DEVICES_TABLE: devices, BACKEND_WRITES_POSITIONS: 'true', LOG_LEVEL: 'debug',
  });
  t.after(() => stop(p));
  await until('healthy', async () => (await get(port, '/healthz')).status === 200);
  await until('migrations', () => p.output.includes('migrations done'));

  const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${mport}`);
  const ts = Date.now();
  const send = (m) => pub.publishAsync('trackers/trk-test/position', JSON.stringify(m), {qos: 1});
  await send({ts, lat: 48.85, lon: 2.35, spd: 12.5, hdg: 270});
  await send({ts, lat: 48.85, lon: 2.35, spd: 12.5, hdg: 270}); // a QoS 1 redelivery
  const r = await until('stored', async () => {
    const r = await get(port, '/devices/trk-test/last-position');
    return r.status === 200 && r.body.stored === true && r.body;
  });
  assert.strictEqual(r.device_id, 'trk-test');
  assert.deepStrictEqual({...r.seen, received_at: undefined}, {ts, lat: 48.85, lon: 2.35, spd: 12.5, hdg: 270, received_at: undefined});
  assert.strictEqual(r.error, null);
  await send({ts: ts - 60000, lat: 1, lon: 1}); // older: a row, but the latest stays
  await until('older stored', async () => (await get(port, '/devices/trk-test/last-position')).body.seen.ts === ts - 60000);
  await pub.endAsync();

  const rows = await pool.query(`SELECT device_id, extract(epoch from time) * 1000 AS ms, lat, lon, speed_kmh, heading FROM "${positions}" ORDER BY time`);
  assert.deepStrictEqual(rows.rows.map((x) => [x.device_id, Math.round(Number(x.ms)), x.lat]), [['trk-test', ts - 60000, 1], ['trk-test', ts, 48.85]]);
  const last = await pool.query(`SELECT device_id, extract(epoch from time) * 1000 AS ms, lat, speed_kmh, heading FROM "${latest}"`);
  assert.deepStrictEqual(last.rows.map((x) => [x.device_id, Math.round(Number(x.ms)), x.lat, x.speed_kmh, x.heading]), [['trk-test', ts, 48.85, 12.5, 270]]);
});
