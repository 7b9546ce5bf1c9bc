// The npm mqtt client (MQTT 5) on the far side of errand's MQTT bridge
// (cmd/errand/bridgemqtt_test.go). Commands, each printing JSON lines:
//   sub <topic> <count> [linger-ms]     print <count> messages (and what comes within linger-ms after), then {"done":true}
//   pub <topic> <payload> [props] [n]   publish at QoS 1 (props: {"userProperties":{…},"contentType":…});
//                                       with n > 1, n messages with {"n":i} merged into the JSON payload
//   request <topic> <json> <timeout-ms> publish with a response topic and correlation data; print the reply
import mqtt from "mqtt";

const [cmd, ...args] = process.argv.slice(2);
const url = process.env.MQTT_URL || "mqtt://127.0.0.1:1883";
const client = await mqtt.connectAsync(url, { protocolVersion: 5, clean: true });

function show(topic, payload, packet, extra = {}) {
  let data = payload.toString();
  try { data = JSON.parse(data); } catch {}
  const p = packet.properties || {};
  console.log(JSON.stringify({ topic, data, userProperties: p.userProperties || {}, contentType: p.contentType,
    correlation: p.correlationData ? p.correlationData.toString() : undefined, ...extra }));
}

if (cmd === "sub") {
  const [topic, count, linger] = args;
  let n = Number(count);
  const done = new Promise((resolve) => {
    client.on("message", (t, payload, packet) => {
      show(t, payload, packet);
      if (--n === 0) setTimeout(resolve, Number(linger || 0));
    });
  });
  await client.subscribeAsync(topic, { qos: 1 });
  console.log(JSON.stringify({ ready: true }));
  await done;
  console.log(JSON.stringify({ done: true }));
} else if (cmd === "pub") {
  const [topic, payload, pjson, count] = args;
  const n = Number(count || 1);
  const properties = JSON.parse(pjson || "{}");
  for (let i = 0; i < n; i++) {
    const body = n > 1 ? JSON.stringify({ ...JSON.parse(payload), n: i }) : payload;
    await client.publishAsync(topic, body, { qos: 1, properties });
  }
  console.log(JSON.stringify({ done: true }));
} else if (cmd === "request") {
  const [topic, json, timeout] = args;
  const replyTo = `${topic}/reply/${Math.random().toString(36).slice(2)}`;
  const got = new Promise((resolve, reject) => {
    client.on("message", (t, payload, packet) => { if (t === replyTo) resolve([t, payload, packet]); });
    setTimeout(() => reject(new Error("no reply")), Number(timeout));
  });
  await client.subscribeAsync(replyTo, { qos: 1 });
  await client.publishAsync(topic, json, { qos: 1, properties: { responseTopic: replyTo, correlationData: Buffer.from("corr-42") } });
  const [t, payload, packet] = await got;
  show(t, payload, packet);
  console.log(JSON.stringify({ done: true }));
}
await client.endAsync();
