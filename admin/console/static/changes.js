// Change review: n and p step to the next and previous change of a diff, as its links do.
(function () {
  "use strict";
  function lines() { return Array.prototype.slice.call(document.querySelectorAll(".diff-line")); }
  function current(all) {
    var id = window.location.hash.slice(1);
    for (var i = 0; i < all.length; i++) { if (all[i].id === id) { return i; } }
    return -1;
  }
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.altKey || event.ctrlKey || event.metaKey || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)
        || target.isContentEditable || (event.key !== "n" && event.key !== "p")) { return; }
    var all = lines();
    if (!all.length) { return; }
    var at = current(all), next = event.key === "n" ? Math.min(at + 1, all.length - 1) : Math.max(at - 1, 0);
    window.location.hash = all[next].id;
    var link = all[next].querySelector("a[data-step]");
    if (link) { link.focus({preventScroll: true}); }
    event.preventDefault();
  });
})();
