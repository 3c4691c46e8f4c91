// The accessibility smoke check run on every page of the browser tests: labels on form fields,
// one h1 and no skipped heading level, unique ids, names on links, buttons and charts, a skip link;
// every element reachable by Tab gets a number so the keyboard walk can tell which ones it reached.
() => {
  const problems = [];
  const shown = el => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
  const named = el => (el.getAttribute("aria-label") || el.getAttribute("aria-labelledby") ||
                       el.textContent.trim() || el.getAttribute("title") || "").length > 0;
  if (!document.documentElement.lang) problems.push("no lang on <html>");
  if (!document.title.trim()) problems.push("no <title>");
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden") continue;
    const label = (el.id && document.querySelector(`label[for="${CSS.escape(el.id)}"]`)) || el.closest("label")
                  || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby");
    if (!label) problems.push(`form field without a label: ${el.outerHTML.slice(0, 120)}`);
  }
  const headings = [...document.querySelectorAll("h1, h2, h3, h4, h5, h6")];
  const h1 = headings.filter(h => h.tagName === "H1").length;
  if (h1 !== 1) problems.push(`${h1} h1 headings (one wanted)`);
  let previous = 0;
  for (const h of headings) {
    const level = Number(h.tagName[1]);
    if (level > previous + 1) problems.push(`heading h${level} "${h.textContent.trim().slice(0, 50)}" after h${previous}`);
    previous = level;
  }
  const ids = new Map();
  for (const el of document.querySelectorAll("[id]")) ids.set(el.id, (ids.get(el.id) || 0) + 1);
  for (const [id, n] of ids) if (n > 1) problems.push(`id "${id}" used ${n} times`);
  for (const el of document.querySelectorAll("a, button")) if (!named(el)) problems.push(`unnamed ${el.outerHTML.slice(0, 100)}`);
  for (const el of document.querySelectorAll("img")) if (!el.hasAttribute("alt")) problems.push("img without alt");
  for (const el of document.querySelectorAll("svg[role=img]")) if (!named(el)) problems.push("chart without a text alternative");
  if (!document.querySelector("a.skip-link[href='#main']") || !document.getElementById("main")) problems.push("no skip link to #main");
  const tabbable = [...document.querySelectorAll("a[href], button, input, select, textarea, summary, [tabindex]")]
    .filter(el => el.type !== "hidden" && !el.disabled && el.tabIndex >= 0 && (shown(el) || el.classList.contains("skip-link")));
  tabbable.forEach((el, i) => el.setAttribute("data-tab-index", String(i)));
  return {problems, tabbable: tabbable.length, first: tabbable.length ? tabbable[0].textContent.trim() : ""};
}
