// A running job's item carries its start time (data-started, ISO 8601) and shows how long it has run,
// ticking here every second: the server's copy of the item then changes only when the job itself does,
// so the 2-second poll is answered 304 Not Modified while a job waits.
(function () {
  "use strict";

  function elapsedText(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    if (s < 60) return s + " s";
    var m = Math.floor(s / 60), h = Math.floor(m / 60);
    if (h === 0) return m + " min " + (s % 60) + " s";
    return h + " h " + (m % 60) + " min";
  }

  function tick(root) {
    var now = Date.now();
    (root || document).querySelectorAll(".job-elapsed[data-started]").forEach(function (el) {
      var started = Date.parse(el.dataset.started);
      if (!isNaN(started)) {
        el.textContent = elapsedText((now - started) / 1000);
        el.title = "Started " + new Date(started).toLocaleString();
      }
    });
  }

  // A form with data-copy="<selector>" copies that element's text to the clipboard; without JavaScript (or a
  // clipboard), the form opens the text on its own page.
  function copyForms(root) {
    (root || document).querySelectorAll("form[data-copy]").forEach(function (form) {
      if (form.dataset.copyBound) return;
      form.dataset.copyBound = "1";
      form.addEventListener("submit", function (event) {
        if (!navigator.clipboard) return;
        event.preventDefault();
        navigator.clipboard.writeText(document.querySelector(form.dataset.copy).textContent).then(function () {
          form.querySelector("[data-copy-result]").textContent = "Copied.";
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { tick(); copyForms(); });
  document.addEventListener("htmx:load", function (event) { copyForms(event.target); });
  // htmx swaps a fresh (server-rendered) item in on every poll that changed: tick it at once.
  document.addEventListener("htmx:load", function (event) { tick(event.target.parentNode || document); });
  setInterval(tick, 1000);
})();
