// Drives errand's GraphQL WebSocket (graphql-transport-ws) with the npm
// graphql-ws client over ws. Commands come on stdin, one JSON object a line;
// what comes back goes to stdout, one JSON object a line:
//
//   {"op":"execute","id":"m1","query":"…","variables":{…}}  → {"id":"m1","next":{…}} … {"id":"m1","complete":true}
//   {"op":"subscribe","id":"s1","query":"…","variables":{…}} → the same, or {"id":"s1","error":[…]}
//   {"op":"follow","id":"f1","query":"…","variables":{…},"field":"jobEvents"}
//       a subscription whose $after variable follows the id of the last event
//       it saw; when the connection drops it subscribes again (a new
//       connection) with that cursor, as an application resuming would.
//   {"op":"exit"}
//
// Connection events: {"closed":{"code":4403,"reason":"…"}}, {"connected":true}.
// argv: url [token]; the token goes in connection_init's payload.
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import readline from "node:readline";

const [url, token] = process.argv.slice(2);
const out = (m) => console.log(JSON.stringify(m));

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  lazy: true,
  retryAttempts: 0,
  connectionParams: token ? { authorization: `Bearer ${token}` } : {},
  on: {
    connected: () => out({ connected: true }),
    closed: (e) => out({ closed: { code: e.code, reason: e.reason } }),
  },
});

function run(id, payload, done) {
  client.subscribe(payload, {
    next: (v) => out({ id, next: v }),
    error: (e) => {
      if (Array.isArray(e)) out({ id, error: e });
      else out({ id, error: { code: e.code, reason: e.reason, message: e.message } });
      done?.(e);
    },
    complete: () => {
      out({ id, complete: true });
      done?.(null);
    },
  });
}

function follow(cmd) {
  const variables = { ...cmd.variables };
  const once = () =>
    client.subscribe({ query: cmd.query, variables }, {
      next: (v) => {
        out({ id: cmd.id, next: v });
        const ev = v.data?.[cmd.field];
        if (ev?.id) variables.after = ev.id;
      },
      error: (e) => {
        if (Array.isArray(e)) return out({ id: cmd.id, error: e });
        out({ id: cmd.id, dropped: { code: e.code, after: variables.after ?? null } });
        setTimeout(once, 300); // the server went away: resume after the last event seen
      },
      complete: () => out({ id: cmd.id, complete: true }),
    });
  once();
}

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  if (!line.trim()) return;
  const cmd = JSON.parse(line);
  switch (cmd.op) {
    case "execute":
    case "subscribe":
      return run(cmd.id, { query: cmd.query, variables: cmd.variables });
    case "follow":
      return follow(cmd);
    case "exit":
      client.dispose();
      process.exit(0);
  }
});
