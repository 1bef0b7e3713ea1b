// Switchboard dashboard charts: Chart.js over the data the server renders into
// <script type="application/json" id="chart-data">, redrawn whenever htmx swaps in a
// fresh copy. No request of its own: the page's htmx polling brings new data.
(function () {
  "use strict";
  var charts = {};
  var SERIES = {
    throughput: [["received", "Received"], ["routed", "Routed"], ["delivered", "Delivered"]],
    errors: [["failed", "Failed"], ["rejected", "Rejected"]],
    latency: [["p50_ms", "p50 (ms)"], ["p99_ms", "p99 (ms)"]],
    depth: [["queue_depth", "Waiting in the outbox"]]
  };
  var COLOURS = ["#007bff", "#28a745", "#17a2b8", "#dc3545", "#fd7e14", "#6f42c1"];

  function themeColours() {
    var dark = document.querySelector(".console-page[data-theme=dark]") !== null;
    return { text: dark ? "#dee2e6" : "#343a40", grid: dark ? "rgba(255,255,255,.12)" : "rgba(0,0,0,.08)" };
  }

  function draw() {
    var source = document.getElementById("chart-data");
    if (!source || typeof Chart === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    var colours = themeColours();
    Object.keys(SERIES).forEach(function (name) {
      var canvas = document.getElementById("chart-" + name);
      if (!canvas) { return; }
      var datasets = SERIES[name].map(function (pair, index) {
        return {
          label: pair[1], data: data.points.map(function (p) { return p[pair[0]]; }),
          borderColor: COLOURS[(name === "errors" ? 3 : 0) + index],
          backgroundColor: COLOURS[(name === "errors" ? 3 : 0) + index],
          spanGaps: true, pointRadius: 0, borderWidth: 2, tension: 0.2
        };
      });
      if (charts[name]) {
        charts[name].data.labels = data.labels;
        charts[name].data.datasets = datasets;
        charts[name].update("none");
        return;
      }
      charts[name] = new Chart(canvas, {
        type: name === "errors" ? "bar" : "line",
        data: { labels: data.labels, datasets: datasets },
        options: {
          animation: false, responsive: true, maintainAspectRatio: false,
          interaction: { mode: "index", intersect: false },
          plugins: { legend: { labels: { color: colours.text, boxWidth: 12 } } },
          scales: {
            x: { ticks: { color: colours.text, maxTicksLimit: 8 }, grid: { color: colours.grid } },
            y: { beginAtZero: true, ticks: { color: colours.text, precision: 0 }, grid: { color: colours.grid } }
          }
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", draw);
  document.body.addEventListener("htmx:afterSwap", draw);
  draw();
})();
