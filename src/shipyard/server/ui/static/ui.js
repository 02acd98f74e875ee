/* Shipyard web UI: the little the server-rendered pages cannot do alone.
 * - runs table: "select all", the Compare button's state, selects that submit on change;
 * - metric charts (uPlot): loaded when scrolled into view, from the same JSON API a script uses
 *   (or, for monitor drift, from JSON the page carries), with log scale, smoothing and a choice of x axis
 *   (step, wall-clock time, time since the first value). Pages work without this file, except for drawing charts. */
(function () {
  "use strict";

  // -- runs table --------------------------------------------------------------------------------
  function updateCompareButton() {
    var button = document.getElementById("compare-button");
    if (!button) return;
    var chosen = document.querySelectorAll('input[name="runs"][form="compare-form"]:checked').length;
    var needed = Number(button.getAttribute("data-min-selected") || "2");
    button.disabled = chosen < needed;
    button.textContent = chosen ? "Compare " + chosen + " selected" : "Compare selected";
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.id === "select-all") {
      document.querySelectorAll('input[name="runs"][form="compare-form"]').forEach(function (box) {
        box.checked = target.checked;
      });
    }
    if (target.matches && target.matches("[data-autosubmit]") && target.form) {
      target.form.requestSubmit();
    }
    updateCompareButton();
  });
  document.addEventListener("DOMContentLoaded", updateCompareButton);
  document.addEventListener("htmx:afterSettle", updateCompareButton);

  // -- charts ------------------------------------------------------------------------------------
  var PALETTE = ["#0b5cad", "#d9480f", "#2b8a3e", "#ae3ec9", "#e8590c", "#1098ad", "#c2255c", "#5c940d",
                 "#364fc7", "#862e9c"];

  function color(i) {
    if (i < PALETTE.length) return PALETTE[i];
    return "hsl(" + Math.round((i * 137.508) % 360) + ", 65%, 42%)";
  }

  function number(v) {
    if (typeof v === "number") return v;
    return null;  // "NaN", "Infinity", "-Infinity": not drawable
  }

  function smooth(values, weight) {
    if (!weight) return values;
    var out = new Array(values.length), last = 0, n = 0;
    for (var i = 0; i < values.length; i++) {
      var v = values[i];
      if (v === null) { out[i] = null; continue; }
      last = last * weight + (1 - weight) * v;
      n++;
      out[i] = last / (1 - Math.pow(weight, n));  // debiased, so the line starts at the first value
    }
    return out;
  }

  function settings() {
    var log = document.querySelector("[data-log-scale]");
    var smoothing = document.querySelector("[data-smoothing]");
    var axis = document.querySelector("[data-x-axis]");
    return { log: !!(log && log.checked), smoothing: smoothing ? Number(smoothing.value) : 0,
             x: axis ? axis.value : "step" };
  }

  // x of each point: the step, the wall-clock time (seconds since the epoch, a time axis), or the
  // seconds since the series' first value; sorted by x, as uPlot draws in the order it is given.
  function xyOf(s, axis, ys) {
    if (axis === "step" || !s.timestamps) return [s.steps, ys];
    var start = s.timestamps.reduce(function (low, t) { return t < low ? t : low; }, Infinity);
    var xs = s.timestamps.map(function (t) { return axis === "wall" ? t / 1000 : (t - start) / 1000; });
    var order = xs.map(function (_, i) { return i; }).sort(function (a, b) { return xs[a] - xs[b]; });
    return [order.map(function (i) { return xs[i]; }), order.map(function (i) { return ys[i]; })];
  }

  function seriesOf(payload) {
    if (payload.series) return payload.series;
    return [{ name: payload.key, steps: payload.steps, values: payload.values }];
  }

  function draw(figure) {
    var payload = figure._payload;
    var plotBox = figure.querySelector(".plot");
    var note = figure.querySelector("[data-note]");
    var opts = settings();
    var runs = seriesOf(payload);
    var tables = runs.map(function (s) {
      var ys = s.values.map(number);
      if (opts.log) ys = ys.map(function (v) { return v !== null && v > 0 ? v : null; });
      var xy = xyOf(s, opts.x, ys);
      return [xy[0], smooth(xy[1], opts.smoothing)];
    });
    var points = runs.reduce(function (sum, s) { return sum + s.steps.length; }, 0);
    if (!points) {
      note.textContent = "No values.";
      return;
    }
    var data = tables.length === 1 ? [tables[0][0], tables[0][1]] : uPlot.join(tables);
    // x in seconds since the epoch (monitor windows, or wall time when chosen), else steps or seconds
    var byTime = !!payload.time || (opts.x === "wall" && !!runs[0].timestamps);
    var xLabel = payload.time ? "window" : !runs[0].timestamps ? "step" : {step: "step", wall: "time", relative: "seconds"}[opts.x];
    var series = [{ label: xLabel }].concat(runs.map(function (s, i) {
      return { label: s.name, stroke: s.color || color(i), width: 1.5, spanGaps: true, dash: s.dash || undefined,
               points: { show: !!payload.time && !s.dash && s.steps.length < 60 } };
    }));
    if (figure._plot) figure._plot.destroy();
    plotBox.textContent = "";
    figure._plot = new uPlot({
      width: Math.max(280, plotBox.clientWidth || figure.clientWidth - 16),
      height: 240,
      scales: { x: { time: byTime }, y: { distr: opts.log ? 3 : 1 } },
      // the pages print every time in UTC: the chart's time axis says the same hours
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
      series: series,
      legend: { show: runs.length <= 12 },
      cursor: { drag: { x: true, y: false } },
    }, data, plotBox);
    note.textContent = (payload.time ? runs[0].steps.length + " windows" : points + " points" +
      (runs.length > 1 ? " across " + runs.length + " runs" : "")) +
      (opts.log ? " · log scale (values ≤ 0 left out)" : "");
  }

  function load(figure) {
    if (figure._loading) return;
    figure._loading = true;
    var note = figure.querySelector("[data-note]");
    var inline = figure.getAttribute("data-inline");
    if (inline) {  // the page carries the data: <script type="application/json" id="...">{key: payload}</script>
      var source = document.getElementById(inline);
      var all = source ? JSON.parse(source.textContent) : {};
      figure._payload = all[figure.getAttribute("data-key")];
      if (figure._payload) draw(figure); else note.textContent = "No values.";
      return;
    }
    note.textContent = "Loading…";
    fetch(figure.getAttribute("data-url"), { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("the server answered " + response.status);
        return response.json();
      })
      .then(function (payload) {
        figure._payload = payload;
        draw(figure);
      })
      .catch(function (err) {
        note.textContent = "Could not load this chart: " + err.message;
      });
  }

  function redrawAll() {
    document.querySelectorAll("[data-chart]").forEach(function (figure) {
      if (figure._payload) draw(figure);
    });
  }

  function initCharts() {
    var figures = document.querySelectorAll("[data-chart]");
    if (!figures.length || typeof uPlot === "undefined") return;
    if ("IntersectionObserver" in window) {
      var observer = new IntersectionObserver(function (entries) {
        entries.forEach(function (entry) {
          if (entry.isIntersecting) {
            observer.unobserve(entry.target);
            load(entry.target);
          }
        });
      }, { rootMargin: "200px" });
      figures.forEach(function (f) { observer.observe(f); });
    } else {
      figures.forEach(load);
    }
    document.querySelectorAll("[data-log-scale], [data-smoothing], [data-x-axis]").forEach(function (control) {
      control.addEventListener("input", redrawAll);
    });
    var resizing = null;
    window.addEventListener("resize", function () {
      clearTimeout(resizing);
      resizing = setTimeout(function () {
        figures.forEach(function (figure) {
          if (figure._plot) {
            var box = figure.querySelector(".plot");
            figure._plot.setSize({ width: Math.max(280, box.clientWidth), height: 240 });
          }
        });
      }, 150);
    });
  }

  document.addEventListener("DOMContentLoaded", initCharts);
})();
