// Follows one job's event stream with the npm eventsource package until the job
// finishes, printing one JSON line per event it saw. The server may restart in
// between: EventSource reconnects with Last-Event-ID on its own.
import { EventSource } from "eventsource";

const [url] = process.argv.slice(2);
const types = ["job.created", "job.started", "job.progress", "job.retrying", "job.succeeded", "job.failed", "job.canceled"];
const es = new EventSource(url);
let errors = 0;
for (const t of types) {
  es.addEventListener(t, (m) => {
    const e = JSON.parse(m.data);
    console.log(JSON.stringify({ id: m.lastEventId, type: m.type, event_id: e.id }));
    if (t === "job.succeeded" || t === "job.failed" || t === "job.canceled") {
      es.close();
      console.log(JSON.stringify({ done: true, errors }));
      process.exit(0);
    }
  });
}
es.addEventListener("open", () => console.log(JSON.stringify({ open: true })));
es.addEventListener("error", () => { errors++; });
setTimeout(() => { console.log(JSON.stringify({ timeout: true })); process.exit(1); }, 60000);
