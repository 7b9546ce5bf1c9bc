// A webhook receiver that checks every delivery with the standardwebhooks
// package (a third-party implementation of the Standard Webhooks spec).
//
// It prints "listening <port>", then reads lines "<path> <secret>" on stdin: the
// secrets deliveries to that path must verify with. For each request it prints
// one JSON line: path, webhook-id, type, and which of the path's secrets verify it.
import http from "node:http";
import readline from "node:readline";
import { Webhook } from "standardwebhooks";

const secrets = new Map(); // path -> [secret]
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const [path, secret] = line.trim().split(" ");
  if (!secrets.has(path)) secrets.set(path, []);
  secrets.get(path).push(secret);
});

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    const headers = {
      "webhook-id": req.headers["webhook-id"],
      "webhook-timestamp": req.headers["webhook-timestamp"],
      "webhook-signature": req.headers["webhook-signature"],
    };
    const verified = [];
    let type = "";
    for (const s of secrets.get(req.url) ?? []) {
      try {
        type = new Webhook(s).verify(body, headers).type;
        verified.push(s);
      } catch (e) {
        // not signed with this secret
      }
    }
    console.log(JSON.stringify({ path: req.url, id: headers["webhook-id"], type, verified,
      signatures: (headers["webhook-signature"] ?? "").split(" ").length }));
    res.writeHead(verified.length > 0 ? 200 : 401).end();
  });
});
server.listen(0, "127.0.0.1", () => console.log(`listening ${server.address().port}`));
