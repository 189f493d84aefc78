// The usage page's per-day chart: stacked bars by the credentials that paid, one metric at a
// time. The numbers come from the page (json_script); the same figures are in its table.
(function () {
  "use strict";
  var source = document.getElementById("usage-chart-data");
  var canvas = document.getElementById("usage-chart");
  if (!source || !canvas || typeof Chart === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  var colours = { byok: "#1f6feb", platform: "#bf8700" };

  function datasets(metric) {
    return Object.keys(data[metric]).map(function (key) {
      return {
        label: data.source_labels[key],
        data: data[metric][key],
        backgroundColor: colours[key],
        stack: "source",
      };
    });
  }

  var chart = new Chart(canvas, {
    type: "bar",
    data: { labels: data.labels, datasets: datasets("requests") },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } },
      plugins: { legend: { position: "bottom" } },
    },
  });
  canvas.dataset.chartReady = "requests";

  document.querySelectorAll("[data-chart-metric]").forEach(function (button) {
    button.addEventListener("click", function () {
      var metric = button.dataset.chartMetric;
      chart.data.datasets = datasets(metric);
      chart.update();
      canvas.dataset.chartReady = metric;
      document.querySelectorAll("[data-chart-metric]").forEach(function (other) {
        other.setAttribute("aria-pressed", other === button ? "true" : "false");
      });
    });
  });
})();
