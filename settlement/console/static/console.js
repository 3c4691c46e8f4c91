// Finance console: the pages work without this script; it only refreshes a page that
// waits for a task (an export being written).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const waiting = document.querySelector("[data-refresh]");
  if (waiting) {
    const seconds = Number(waiting.getAttribute("data-refresh")) || 5;
    window.setTimeout(() => window.location.reload(), seconds * 1000);
  }
});
