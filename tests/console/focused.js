// The focused element's number (from audit.js) and whether its focus shows (an outline or a shadow).
() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const ring = (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0) || style.boxShadow !== "none";
  return {index: el.getAttribute("data-tab-index"), ring, tag: el.tagName, text: (el.textContent || el.name || "").trim().slice(0, 40)};
}
