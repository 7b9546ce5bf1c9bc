// Follows a channel over errand's GraphQL event stream (graphql-sse, distinct
// connections mode) with the npm graphql-sse client, printing each result as
// a JSON line ({"connected":true} once the stream is open), and {"done":true}
// once it has seen `count` events.
// argv: url token channel count [after]
import { createClient } from "graphql-sse";

const [url, token, channel, count, after] = process.argv.slice(2);
const client = createClient({
  url,
  retryAttempts: 0,
  headers: token ? { authorization: `Bearer ${token}` } : {},
  on: { connected: () => console.log(JSON.stringify({ connected: true })) },
});
const query = `subscription Follow($channel: String!, $after: String) {
  channel(channel: $channel, after: $after) { id stream type data }
}`;
let seen = 0;
try {
  for await (const result of client.iterate({ query, variables: { channel, after: after || null } })) {
    console.log(JSON.stringify(result));
    if (result.errors) break;
    if (++seen >= Number(count)) break;
  }
  console.log(JSON.stringify({ done: true, seen }));
} catch (e) {
  console.log(JSON.stringify({ failed: String(e?.message ?? e) }));
} finally {
  client.dispose();
}
