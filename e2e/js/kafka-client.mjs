// The npm kafkajs client on the far side of errand's Kafka bridge
// (cmd/errand/bridgekafka_test.go), against the test's in-process kfake
// cluster (KAFKA_BROKERS). Commands, each printing JSON lines:
//   sub <topic> <count> [linger-ms]     consume from the start in a group of its own; print <count> records
//   pub <topic> <payload> [headers-json]
//   request <topic> <json> <timeout-ms> produce with reply-topic and correlation-id headers; print the reply
import { Kafka, logLevel } from "kafkajs";

const [cmd, ...args] = process.argv.slice(2);
const kafka = new Kafka({ clientId: "e2e", brokers: process.env.KAFKA_BROKERS.split(","), logLevel: process.env.KAFKA_LOG ? logLevel.DEBUG : logLevel.ERROR });

function show(topic, m, extra = {}) {
  let data = m.value.toString();
  try { data = JSON.parse(data); } catch {}
  const headers = {};
  for (const [k, v] of Object.entries(m.headers || {})) headers[k] = v.toString();
  console.log(JSON.stringify({ topic, key: m.key ? m.key.toString() : null, data, headers, ...extra }));
}

async function consume(topic, onMessage) {
  const consumer = kafka.consumer({ groupId: "e2e-" + Math.random().toString(36).slice(2) });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ topic, partition, message }) => onMessage(topic, partition, message) });
  return consumer;
}

if (cmd === "sub") {
  const [topic, count, linger] = args;
  let n = Number(count);
  let resolve;
  const done = new Promise((r) => (resolve = r));
  const c = await consume(topic, (t, partition, m) => {
    show(t, m, { partition });
    if (--n === 0) setTimeout(resolve, Number(linger || 0));
  });
  console.log(JSON.stringify({ ready: true }));
  await done;
  await c.disconnect();
  console.log(JSON.stringify({ done: true }));
} else if (cmd === "pub") {
  const [topic, payload, hjson] = args;
  const p = kafka.producer();
  await p.connect();
  await p.send({ topic, acks: -1, messages: [{ value: payload, headers: JSON.parse(hjson || "{}") }] });
  await p.disconnect();
  console.log(JSON.stringify({ done: true }));
} else if (cmd === "request") {
  const [topic, json, timeout] = args;
  const replyTopic = topic + "-reply";
  let resolve;
  const got = new Promise((r, reject) => { resolve = r; setTimeout(() => reject(new Error("no reply")), Number(timeout)); });
  const c = await consume(replyTopic, (t, partition, m) => resolve([t, m]));
  const p = kafka.producer();
  await p.connect();
  await p.send({ topic, acks: -1, messages: [{ value: json, headers: { "reply-topic": replyTopic, "correlation-id": "corr-9" } }] });
  const [t, m] = await got;
  show(t, m);
  await p.disconnect();
  await c.disconnect();
  console.log(JSON.stringify({ done: true }));
}
