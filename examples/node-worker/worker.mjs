#!/usr/bin/env node
// An errand pull worker in Node.js (18+), standard library only (global fetch).
//
// It leases jobs of one operation over errand's HTTP worker protocol (long-poll),
// heartbeats while it works (reporting progress), and completes or fails each job.
// The work here counts the words of {"text": "..."}; replace `work` with yours.
//
//   node examples/node-worker/worker.mjs --url http://127.0.0.1:8080 --operation count-words
import os from "node:os";
import { parseArgs } from "node:util";

class LeaseLost extends Error {}

const { values: args } = parseArgs({
  options: {
    url: { type: "string", default: process.env.ERRAND_URL ?? "http://127.0.0.1:8080" },
    operation: { type: "string" },
    token: { type: "string", default: process.env.ERRAND_TOKEN },
  },
});
if (!args.operation) {
  console.error("--operation is required");
  process.exit(2);
}
const base = args.url.replace(/\/$/, "");

async function call(method, path, body) {
  const headers = { "content-type": "application/json" };
  if (args.token) headers.authorization = `Bearer ${args.token}`;
  const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) {
    if (data?.code === "lease_expired") throw new LeaseLost(data.detail);
    throw new Error(`${method} ${path}: ${res.status} ${data?.code}: ${data?.detail}`);
  }
  return data;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// work counts words, reporting progress along the way.
async function work(job, progress) {
  const words = (job.input.text ?? "").split(/\s+/).filter(Boolean);
  for (let i = 1; i <= 3; i++) {
    await progress(i * 25, `step ${i} of 3`);
    await sleep(100);
  }
  return { words: words.length, by: "node" };
}

async function runJob(lease) {
  const id = encodeURIComponent(lease.lease_id);
  const keepAlive = setInterval(() => {
    call("POST", `/v1/leases/${id}/heartbeat`, { extend_seconds: 60 }).catch(() => {});
  }, 20_000);
  try {
    const progress = (percent, message) =>
      call("POST", `/v1/leases/${id}/heartbeat`, { progress: { percent, message }, extend_seconds: 60 });
    const result = await work(lease.job, progress);
    await call("POST", `/v1/leases/${id}/complete`, { result });
  } catch (e) {
    if (!(e instanceof LeaseLost)) {
      await call("POST", `/v1/leases/${id}/fail`, { error: { code: e.name, message: e.message }, retry: true }).catch(() => {});
    }
  } finally {
    clearInterval(keepAlive);
  }
}

let stopping = false;
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => { stopping = true; });
const name = `node@${os.hostname()}-${process.pid}`;
console.log(`working ${args.operation} jobs from ${base} as ${name}`);
while (!stopping) {
  try {
    const { leases } = await call("POST", "/v1/leases", {
      operations: [args.operation], max_jobs: 4, wait_seconds: 5, lease_seconds: 60, worker: name,
    });
    await Promise.all(leases.map(runJob));
  } catch (e) {
    console.error(`lease failed: ${e.message}`);
    await sleep(1000);
  }
}
