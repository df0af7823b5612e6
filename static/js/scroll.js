// A table wider than its card scrolls inside it (on a phone); keyboard users must reach it to scroll it, so a
// table that scrolls now, and only such a table, gets a tab stop (WCAG 2.1.1; axe's scrollable-region-focusable).
// A file of its own because the Content-Security-Policy allows no inline script.
(function () {
  "use strict";
  function mark() {
    document.querySelectorAll("table.table, .table-wrap").forEach(function (box) {
      if (box.scrollWidth > box.clientWidth) {
        box.setAttribute("tabindex", "0");
      } else if (box.getAttribute("tabindex") === "0") {
        box.removeAttribute("tabindex");
      }
    });
  }
  document.addEventListener("DOMContentLoaded", mark);
  window.addEventListener("resize", mark);
})();
