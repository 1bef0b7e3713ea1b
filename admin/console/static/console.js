// Switchboard console: the CSRF token on every htmx request, and due-time countdowns.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  document.body.addEventListener("htmx:configRequest", function (event) {
    if (meta) { event.detail.headers["X-CSRFToken"] = meta.content; }
  });

  function words(ms) {
    var overdue = ms < 0, s = Math.abs(ms) / 1000;
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    var text = d ? d + "d " + h + "h" : h ? h + "h " + m + "m" : m + "m";
    return overdue ? "overdue by " + text : "due in " + text;
  }
  function tick() {
    document.querySelectorAll("[data-due]").forEach(function (el) {
      var ms = Date.parse(el.getAttribute("data-due")) - Date.now();
      el.textContent = words(ms);
      el.classList.toggle("text-danger", ms < 0);
      el.classList.toggle("overdue", ms < 0);
    });
  }
  tick();
  setInterval(tick, 30000);

  // After an action, what happened (or why it was not done) takes the focus, so a
  // keyboard or screen-reader user hears it and goes on from there.
  var said = document.querySelector("[data-focus]");
  if (!said && document.querySelector("[data-focus-flash]")) {
    said = document.querySelector(".console-page > .container-fluid > .alert");
  }
  if (said) {
    if (!said.hasAttribute("tabindex")) { said.setAttribute("tabindex", "-1"); }
    said.focus();
  }
  document.body.addEventListener("htmx:afterSwap", tick);

  // A form that says why it refused (400, 403, 409) shows that answer in its target,
  // as the page without htmx would.
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if (status >= 400 && status < 500 && event.detail.elt.closest("[data-swap-refusals]")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // A long list of fields to tick, narrowed to those whose words hold what is typed:
  // the sections with a match open, the others hide.
  document.body.addEventListener("input", function (event) {
    var box = event.target.closest && event.target.closest("[data-narrows]");
    if (!box) { return; }
    var words = box.value.trim().toLowerCase();
    var list = document.getElementById(box.getAttribute("data-narrows"));
    if (!list) { return; }
    list.querySelectorAll("details").forEach(function (section) {
      var found = 0;
      section.querySelectorAll(".form-check").forEach(function (choice) {
        var hit = !words || choice.textContent.toLowerCase().indexOf(words) !== -1;
        choice.hidden = !hit;
        if (hit) { found += 1; }
      });
      section.hidden = words && !found;
      if (words) { section.open = found > 0; }
    });
  });
})();
