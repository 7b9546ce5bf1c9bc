// The /docs page: curl lines name the origin the page was opened at, and
// each has a button that copies it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const base = document.querySelector("[data-base]");
  const from = base ? base.dataset.base : "";
  const to = window.location.origin;
  for (const pre of document.querySelectorAll("pre.curl")) {
    const code = pre.querySelector("code");
    if (from && to && from !== to && to.startsWith("http")) {
      code.textContent = code.textContent.split(from).join(to);
    }
    const button = document.createElement("button");
    button.className = "copy";
    button.type = "button";
    button.textContent = "copy";
    button.addEventListener("click", () => {
      const done = () => { button.textContent = "copied"; setTimeout(() => { button.textContent = "copy"; }, 1500); };
      if (navigator.clipboard) {
        navigator.clipboard.writeText(code.textContent).then(done, () => { button.textContent = "select and copy"; });
      }
    });
    pre.appendChild(button);
  }
  if (base && to.startsWith("http")) {
    base.textContent = to;
  }
  document.body.dataset.ready = "true";
});
