/* A small stand-in for the bootstrap-table jQuery plugin, which GX Data Docs load from a CDN
   and which no PyPI package ships. It renders GX's column/data options into the table, with
   a text filter per filtered column and GX's click-row event, so the GX index works offline.
   Method calls (clearFilterControl, resetSearch) clear the filters. */
(function ($) {
  "use strict";
  function lookup(name) {
    return typeof name === "string" ? window[name] : name;
  }
  function cellText(column, row) {
    var collect = lookup(column.filterDataCollector);
    var value = row[column.field] == null ? "" : String(row[column.field]);
    return collect ? String(collect(value, row, value)) : $("<div>").html(value).text();
  }
  function applyFilters(table, columns, rows) {
    var wanted = {};
    table.find("input.gx-filter").each(function () {
      wanted[this.dataset.field] = this.value.trim().toLowerCase();
    });
    table.find("tbody tr").each(function (i) {
      var row = rows[i], show = columns.every(function (c) {
        var q = wanted[c.field];
        return !q || cellText(c, row).toLowerCase().indexOf(q) >= 0;
      });
      $(this).toggle(show);
    });
  }
  $.fn.bootstrapTable = function (options) {
    if (typeof options === "string") {
      this.find("input.gx-filter").val("").trigger("input");
      return this;
    }
    return this.each(function () {
      var table = $(this), columns = options.columns || [], rows = options.data || [];
      var attributes = lookup(options.rowAttributes), style = lookup(options.rowStyle);
      var head = $("<thead>"), titles = $("<tr>"), filters = $("<tr>"), body = $("<tbody>");
      columns.forEach(function (c) {
        titles.append($("<th>").text(c.title || ""));
        var cell = $("<th>");
        if (c.filterControl) {
          cell.append($('<input class="gx-filter form-control form-control-sm">')
            .attr({"data-field": c.field, "aria-label": "filter " + (c.title || c.field)}));
        }
        filters.append(cell);
      });
      head.append(titles);
      if (columns.some(function (c) { return c.filterControl; })) head.append(filters);
      rows.forEach(function (row, index) {
        var tr = $("<tr>");
        if (attributes) tr.attr(attributes(row, index));
        if (style && style(row, index).css) tr.css(style(row, index).css);
        columns.forEach(function (c) {
          tr.append($("<td>").html(row[c.field] == null ? "" : String(row[c.field])));
        });
        tr.on("click", function () { table.trigger("click-row.bs.table", [row, tr]); });
        body.append(tr);
      });
      table.addClass("table").empty().append(head, body);
      table.on("input", "input.gx-filter", function () { applyFilters(table, columns, rows); });
    });
  };
})(window.jQuery);
