// POSTs a GraphQL query with Node's own fetch and prints the status, the
// content type and the body as one JSON line.
// argv: url token query [accept]
const [url, token, query, accept] = process.argv.slice(2);
const headers = { "content-type": "application/json", accept: accept || "application/graphql-response+json, application/json;q=0.9" };
if (token) headers.authorization = `Bearer ${token}`;
const res = await fetch(url, { method: "POST", headers, body: JSON.stringify({ query }) });
console.log(JSON.stringify({ status: res.status, contentType: res.headers.get("content-type"), body: await res.json() }));
