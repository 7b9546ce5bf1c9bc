// The npm amqplib client on the far side of errand's AMQP bridge
// (cmd/errand/bridgeamqp_test.go). Commands, each printing JSON lines:
//   setup <exchange> <queue> <binding-key>   declare a topic exchange, a durable queue bound to it
//   queue <queue>                            declare a durable queue
//   sub <queue> <count> [linger-ms]          print <count> messages (and those within linger-ms after)
//   pub <exchange> <routing-key> <payload> [props-json]   publish (confirmed)
//   request <queue> <json> <timeout-ms>      send with reply_to (an exclusive queue) and correlation_id; print the reply
import amqp from "amqplib";

const [cmd, ...args] = process.argv.slice(2);
const conn = await amqp.connect(process.env.AMQP_URL || "amqp://guest:guest@127.0.0.1:5672");
const ch = await conn.createConfirmChannel();

function show(m, extra = {}) {
  let data = m.content.toString();
  try { data = JSON.parse(data); } catch {}
  const p = m.properties;
  console.log(JSON.stringify({ routingKey: m.fields.routingKey, exchange: m.fields.exchange, data, messageId: p.messageId,
    type: p.type, contentType: p.contentType, correlationId: p.correlationId, headers: p.headers || {}, ...extra }));
}

if (cmd === "setup") {
  const [exchange, queue, key] = args;
  await ch.assertExchange(exchange, "topic", { durable: false, autoDelete: false });
  await ch.assertQueue(queue, { durable: true, arguments: { "x-expires": 600000 } });
  await ch.bindQueue(queue, exchange, key);
  console.log(JSON.stringify({ done: true }));
} else if (cmd === "queue") {
  await ch.assertQueue(args[0], { durable: true, arguments: { "x-expires": 600000 } });
  console.log(JSON.stringify({ done: true }));
} else if (cmd === "sub") {
  const [queue, count, linger] = args;
  let n = Number(count);
  await ch.prefetch(1000);
  const done = new Promise((resolve) => {
    ch.consume(queue, (m) => {
      show(m);
      ch.ack(m);
      if (--n === 0) setTimeout(resolve, Number(linger || 0));
    });
  });
  console.log(JSON.stringify({ ready: true }));
  await done;
  console.log(JSON.stringify({ done: true }));
} else if (cmd === "pub") {
  const [exchange, key, payload, pjson] = args;
  ch.publish(exchange, key, Buffer.from(payload), JSON.parse(pjson || "{}"));
  await ch.waitForConfirms();
  console.log(JSON.stringify({ done: true }));
} else if (cmd === "request") {
  const [queue, json, timeout] = args;
  const q = await ch.assertQueue("", { exclusive: true });
  const got = new Promise((resolve, reject) => {
    ch.consume(q.queue, (m) => { ch.ack(m); resolve(m); });
    setTimeout(() => reject(new Error("no reply")), Number(timeout));
  });
  ch.sendToQueue(queue, Buffer.from(json), { replyTo: q.queue, correlationId: "corr-7", contentType: "application/json" });
  await ch.waitForConfirms();
  show(await got);
  console.log(JSON.stringify({ done: true }));
}
await ch.close();
await conn.close();
