'use strict';
// A stand-in for the AccoReboot backend, for the local environment: no
// dependencies (the local VM has Debian's Node.js and no npm registry). It
// answers GET /healthz with whether the database and the MQTT broker accept
// TCP connections, from the settings acco writes into the unit's
// environment file (HOST, PORT, DATABASE_URL, MQTT_URL). It never prints a
// password.
const http = require('http');
const net = require('net');

const host = process.env.HOST || '127.0.0.1';
const port = Number(process.env.PORT || 3000);

function endpoint(raw, defaultPort) {
  try {
    const u = new URL(raw);
    return {host: u.hostname, port: Number(u.port || defaultPort)};
  } catch (e) {
    return null;
  }
}

function reachable(ep) {
  return new Promise((resolve) => {
    if (!ep) return resolve(false);
    const s = net.connect(ep.port, ep.host);
    const done = (ok) => { s.destroy(); resolve(ok); };
    s.setTimeout(2000, () => done(false));
    s.on('connect', () => done(true));
    s.on('error', () => done(false));
  });
}

const db = endpoint(process.env.DATABASE_URL || '', 5432);
const mqtt = endpoint(process.env.MQTT_URL || '', 1883);

http.createServer(async (req, res) => {
  if (req.url !== '/healthz') {
    res.writeHead(404);
    res.end();
    return;
  }
  const [dbOK, mqttOK] = await Promise.all([reachable(db), reachable(mqtt)]);
  res.writeHead(200, {'content-type': 'application/json'});
  res.end(JSON.stringify({
    ok: true,
    database: db ? `${db.host}:${db.port}` : null, database_reachable: dbOK,
    mqtt: mqtt ? `${mqtt.host}:${mqtt.port}` : null, mqtt_reachable: mqttOK,
  }) + '\n');
}).listen(port, host, () => {
  console.log(`acco example backend listening on ${host}:${port} (log level ${process.env.LOG_LEVEL || 'info'})`);
});
