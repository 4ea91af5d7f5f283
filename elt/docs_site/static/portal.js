(function () {
  "use strict";
  function ago(s) {
    if (s < 0) s = 0;
    var units = [["d", 86400], ["h", 3600], ["min", 60]];
    for (var i = 0; i < units.length; i++) {
      if (s >= units[i][1]) return (s / units[i][1]).toFixed(1) + " " + units[i][0] + " ago";
    }
    return Math.round(s) + " s ago";
  }
  function refresh() {
    var now = Date.now();
    document.querySelectorAll("time.age").forEach(function (t) {
      t.textContent = ago((now - Date.parse(t.dateTime)) / 1000);
      t.title = t.dateTime;
    });
    document.querySelectorAll("[data-fresh-at]").forEach(function (e) {
      var s = (now - Date.parse(e.dataset.freshAt)) / 1000, state = "fresh";
      if (e.dataset.error && s > +e.dataset.error) state = "error";
      else if (s > +e.dataset.warn) state = "warn";
      e.dataset.state = state;
      e.className = "fresh fresh-" + state;
      e.textContent = {fresh: "fresh", warn: "stale (warn)", error: "stale (error)"}[state] +
        " · " + ago(s).replace(" ago", " old");
    });
  }
  function charts() {
    if (!window.Plotly) return;
    document.querySelectorAll(".plot[data-figure]").forEach(function (d) {
      var f = JSON.parse(d.dataset.figure);
      window.Plotly.newPlot(d, f.data, f.layout, {responsive: true, displaylogo: false});
    });
  }
  function search() {
    var box = document.getElementById("search"), list = document.getElementById("search-results");
    var root = document.body.dataset.root || "";
    if (!box || !window.PORTAL_SEARCH) return;
    box.addEventListener("input", function () {
      var q = box.value.trim().toLowerCase();
      list.innerHTML = "";
      if (!q) return;
      window.PORTAL_SEARCH.filter(function (e) {
        return e.label.toLowerCase().indexOf(q) >= 0;
      }).slice(0, 12).forEach(function (e) {
        var li = document.createElement("li"), a = document.createElement("a");
        a.href = root + e.path;
        a.textContent = e.label + " (" + e.kind + ")";
        li.appendChild(a);
        list.appendChild(li);
      });
    });
  }
  refresh();
  setInterval(refresh, 30000);
  charts();
  search();
})();
