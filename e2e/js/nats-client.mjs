// The npm nats client on the far side of errand's NATS bridge
// (cmd/errand/bridge_test.go). Commands, each printing JSON lines:
//   sub <subject> <count> [stream]   print <count> messages (from a JetStream
//                                     stream's ephemeral consumer when named), then {"done":true}
//   pub <subject> <json> [headers-json] [count]  publish (count copies, data with {"n":i} when count > 1)
//   request <subject> <json> <timeout-ms>       one request; print the reply
//   stream <name> <subject>          create (or update) a JetStream stream
import { connect, headers as natsHeaders, StringCodec, AckPolicy, DeliverPolicy } from "nats";

const sc = StringCodec();
const [cmd, ...args] = process.argv.slice(2);
const nc = await connect({ servers: process.env.NATS_URL || "127.0.0.1:4222" });

function show(m, extra = {}) {
  const hs = {};
  if (m.headers) for (const [k, v] of m.headers) hs[k] = v.join(",");
  let data = sc.decode(m.data);
  try { data = JSON.parse(data); } catch {}
  console.log(JSON.stringify({ subject: m.subject, headers: hs, data, ...extra }));
}

if (cmd === "sub") {
  const [subject, count, stream] = args;
  const n = Number(count);
  if (stream) {
    const js = nc.jetstream();
    const jsm = await nc.jetstreamManager();
    const ci = await jsm.consumers.add(stream, { ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, filter_subject: subject });
    const c = await js.consumers.get(stream, ci.name);
    const msgs = await c.consume();
    console.log(JSON.stringify({ ready: true }));
    let i = 0;
    for await (const m of msgs) {
      show(m, { seq: m.seq });
      m.ack();
      if (++i >= n) break;
    }
  } else {
    const sub = nc.subscribe(subject, { max: n });
    await nc.flush();
    console.log(JSON.stringify({ ready: true }));
    for await (const m of sub) show(m);
  }
  console.log(JSON.stringify({ done: true }));
} else if (cmd === "pub") {
  const [subject, json, hjson, count] = args;
  const n = Number(count || 1);
  for (let i = 0; i < n; i++) {
    const h = natsHeaders();
    for (const [k, v] of Object.entries(JSON.parse(hjson || "{}"))) h.set(k, String(v).replace("{i}", i));
    const data = n > 1 ? JSON.stringify({ ...JSON.parse(json), n: i }) : json;
    nc.publish(subject, sc.encode(data), { headers: h });
  }
  await nc.flush();
  console.log(JSON.stringify({ done: true }));
} else if (cmd === "request") {
  const [subject, json, timeout] = args;
  const m = await nc.request(subject, sc.encode(json), { timeout: Number(timeout) });
  show(m);
  console.log(JSON.stringify({ done: true }));
} else if (cmd === "stream") {
  const [name, subject] = args;
  const jsm = await nc.jetstreamManager();
  try { await jsm.streams.delete(name); } catch {}
  await jsm.streams.add({ name, subjects: [subject], duplicate_window: 120 * 1e9 });
  console.log(JSON.stringify({ done: true }));
}
await nc.drain();
