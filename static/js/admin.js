// Boxes that scroll sideways on a small screen must be reachable by keyboard (WCAG 2.1.1).
"use strict";
function focusableScrollers() {
  document.querySelectorAll(".table-scroll, .inline-group, .results").forEach((box) => {
    const scrolls = box.scrollWidth > box.clientWidth + 1;
    if (scrolls && !box.hasAttribute("tabindex")) {
      box.setAttribute("tabindex", "0");
      box.dataset.madeFocusable = "true";
    } else if (!scrolls && box.dataset.madeFocusable) {
      box.removeAttribute("tabindex");
      delete box.dataset.madeFocusable;
    }
  });
}
document.addEventListener("DOMContentLoaded", focusableScrollers);
window.addEventListener("resize", focusableScrollers);
