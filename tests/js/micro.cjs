// What `nats micro ls`, `nats micro info` and `nats micro stats` ask, asked with the NATS team's
// JavaScript client (its services client), against the server at argv[2]: every service's
// PING, INFO and STATS answers ($SRV.PING, $SRV.INFO, $SRV.STATS, no name: all services), and
// INFO for the service named argv[3]; printed as one JSON object. Run by
// tests/tests/nats.rs; needs `npm ci --prefix tests/js`.
"use strict";
const { connect } = require("nats");

async function collect(answers) {
  const all = [];
  for await (const answer of await answers) {
    all.push(answer);
  }
  return all;
}

(async () => {
  const nc = await connect({ servers: process.argv[2] });
  const client = nc.services.client({ maxWait: 1000 });
  const out = {
    ping: await collect(client.ping()),
    info: await collect(client.info()),
    stats: await collect(client.stats()),
    named: await collect(client.info(process.argv[3])),
  };
  console.log(JSON.stringify(out));
  await nc.close();
})().catch((err) => {
  console.error(`micro.cjs: ${err}`);
  process.exit(1);
});
