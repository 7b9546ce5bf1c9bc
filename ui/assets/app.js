// errand's dashboard: a little vanilla JavaScript over server-rendered pages.
// Live pages follow a Server-Sent Events stream of HTML fragments the server
// rendered (and escaped); forms that destroy ask first.
"use strict";
(function () {
  function fragment(html) {
    const t = document.createElement("template");
    t.innerHTML = html.trim();
    return t.content;
  }

  // The jobs list: rows of new and changed jobs, without a reload.
  const rows = document.querySelector("[data-live-list]");
  if (rows) {
    const es = new EventSource(rows.dataset.liveList);
    es.onopen = function () { rows.dataset.state = "open"; };
    es.addEventListener("row", function (e) {
      const d = JSON.parse(e.data);
      const old = rows.querySelector('tr[data-id="' + CSS.escape(d.id) + '"]');
      if (!d.match) {
        if (old) old.remove();
        return;
      }
      const row = fragment(d.html).firstElementChild;
      if (old) old.replaceWith(row);
      else rows.prepend(row);
      const empty = document.querySelector("[data-empty]");
      if (empty) empty.remove();
      while (rows.rows.length > 200) rows.deleteRow(-1);
    });
    es.addEventListener("reload", function () { location.reload(); });
  }

  // A job's page: its panel and timeline as its events come.
  const job = document.querySelector("[data-live-job]");
  if (job) {
    const es = new EventSource(job.dataset.liveJob);
    es.onopen = function () { job.dataset.state = "open"; };
    es.addEventListener("job", function (e) {
      const d = JSON.parse(e.data);
      document.getElementById("panel").replaceChildren(fragment(d.panel));
      document.getElementById("timeline").append(fragment(d.entry));
      if (d.terminal) es.close();
    });
    es.addEventListener("reload", function () { es.close(); location.reload(); });
  }

  // A channel's live tail.
  const tail = document.querySelector("[data-live-channel]");
  if (tail) {
    const es = new EventSource(tail.dataset.liveChannel);
    es.onopen = function () { tail.dataset.state = "open"; };
    es.addEventListener("message", function (e) {
      const d = JSON.parse(e.data);
      tail.prepend(fragment(d.html));
      while (tail.children.length > 500) tail.lastElementChild.remove();
    });
    es.addEventListener("reload", function () { es.close(); location.reload(); });
  }

  // Forms that destroy something ask first.
  document.addEventListener("submit", function (e) {
    const msg = e.target.dataset && e.target.dataset.confirm;
    if (msg && !window.confirm(msg)) e.preventDefault();
  });

  // Copy buttons (a token shown once).
  document.addEventListener("click", function (e) {
    const id = e.target.dataset && e.target.dataset.copy;
    if (!id) return;
    const el = document.getElementById(id);
    if (el && navigator.clipboard) {
      navigator.clipboard.writeText(el.textContent).then(function () { e.target.textContent = "Copied"; }, function () {});
    }
  });
})();
