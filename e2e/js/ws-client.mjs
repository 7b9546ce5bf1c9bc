// Drives errand's WebSocket API with the npm ws package: subscribe to a channel,
// publish to it, submit a job and follow it, then report what came back.
import WebSocket from "ws";

const [url, channel, operation] = process.argv.slice(2);
const ws = new WebSocket(url, "errand.v1");
const got = { acks: {}, events: [], errors: [], protocol: null };
const send = (m) => ws.send(JSON.stringify(m));
ws.on("open", () => {
  got.protocol = ws.protocol;
  send({ op: "subscribe", id: "s1", channel });
  send({ op: "ping", id: "p0" });
});
ws.on("message", (raw) => {
  const m = JSON.parse(raw);
  if (m.op === "ack") got.acks[m.id] = m.result;
  if (m.op === "pong") got.acks[m.id] = "pong";
  if (m.op === "error") got.errors.push(m);
  if (m.op === "event") got.events.push({ sub: m.sub, type: m.event.type, id: m.event.id, data: m.event.data });
  if (m.id === "s1" && m.op === "ack") {
    for (let i = 1; i <= 3; i++) send({ op: "publish", id: `p${i}`, channel, type: "order.created", data: { n: i } });
    send({ op: "submit", id: "r1", operation, input: { n: 42 } });
    send({ op: "bogus", id: "x1" });
  }
  if (m.id === "r1" && m.op === "ack") send({ op: "subscribe", id: "s2", job: m.result.id });
  if (m.op === "event" && m.sub === "s2" && m.event.type === "job.succeeded") {
    console.log(JSON.stringify(got));
    ws.close(1000);
  }
});
ws.on("close", (code) => process.exit(code === 1000 ? 0 : 1));
ws.on("error", (e) => { console.error(e.message); process.exit(1); });
setTimeout(() => { console.log(JSON.stringify(got)); process.exit(2); }, 20000);
