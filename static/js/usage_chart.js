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

  // Days as the page writes them ("4 Dec"; the tooltip adds the year), level, thinned out
  // by Chart.js when they do not fit; whole numbers only on the value axis.
  function day(iso, withYear) {
    var options = { day: "numeric", month: "short", timeZone: "UTC" };
    if (withYear) options.year = "numeric";
    return new Date(iso + "T00:00:00Z").toLocaleDateString("en-GB", options);
  }
  var font = { size: 13 };
  var chart = new Chart(canvas, {
    type: "bar",
    data: { labels: data.labels, datasets: datasets("requests") },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      scales: {
        x: {
          stacked: true,
          ticks: {
            font: font, maxRotation: 0, autoSkip: true, autoSkipPadding: 12,
            callback: function (value, index) { return day(data.labels[index], false); },
          },
        },
        y: { stacked: true, beginAtZero: true, ticks: { font: font, precision: 0 } },
      },
      plugins: {
        legend: { position: "bottom", labels: { font: { size: 14 }, boxWidth: 18, padding: 16 } },
        tooltip: { callbacks: { title: function (items) { return day(data.labels[items[0].dataIndex], true); } } },
      },
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
