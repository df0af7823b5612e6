// "Copy" buttons: <button type="button" data-copy="element-id">Copy</button> copies that element's text.
// "Download" buttons: <button type="button" data-download="element-id" data-filename="x.txt"> save it as a file.
// A file of its own because the Content-Security-Policy allows no inline script.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) return;
    var label = button.textContent;
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      button.textContent = "Copied";
      window.setTimeout(function () { button.textContent = label; }, 2000);
    });
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-download]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-download"));
    if (!source) return;
    var blob = new Blob([source.textContent.trim() + "\n"], { type: "text/plain" });
    var link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = button.getAttribute("data-filename") || "download.txt";
    document.body.appendChild(link);
    link.click();
    link.remove();
    window.setTimeout(function () { URL.revokeObjectURL(link.href); }, 1000);
  });
})();
