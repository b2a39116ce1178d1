// Flint web UI: sortable tables, kill confirmations, auto-refresh, log paging.
// Plain JavaScript, served from /static (the pages allow no inline script).
(function () {
  "use strict";

  function cellKey(row, i) {
    var c = row.cells[i];
    if (!c) return "";
    var k = c.getAttribute("data-sort");
    return k !== null ? k : c.textContent.trim();
  }

  function sortTable(table, th) {
    var i = Array.prototype.indexOf.call(th.parentNode.children, th);
    var asc = !th.classList.contains("asc");
    Array.prototype.forEach.call(th.parentNode.children, function (h) {
      h.classList.remove("asc", "desc");
    });
    th.classList.add(asc ? "asc" : "desc");
    var body = table.tBodies[0];
    var rows = Array.prototype.filter.call(body.rows, function (r) {
      return !r.querySelector("td.empty");
    });
    rows.sort(function (a, b) {
      var x = cellKey(a, i), y = cellKey(b, i);
      var nx = parseFloat(x), ny = parseFloat(y);
      var r = (!isNaN(nx) && !isNaN(ny) && String(nx) === x && String(ny) === y)
        ? nx - ny : x.localeCompare(y);
      return asc ? r : -r;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }

  function setupSorting() {
    document.querySelectorAll("table.sortable").forEach(function (table) {
      table.querySelectorAll("thead th").forEach(function (th) {
        th.addEventListener("click", function () { sortTable(table, th); });
      });
    });
  }

  function setupKillConfirm() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        if (!window.confirm(form.getAttribute("data-confirm"))) e.preventDefault();
      });
    });
  }

  function setupRefresh() {
    var box = document.getElementById("auto-refresh");
    if (!box) return;
    var key = "flint.autoRefresh";
    var timer = null;
    var stored = null;
    try { stored = window.localStorage.getItem(key); } catch (e) { /* private mode */ }
    box.checked = stored !== "off";
    function arm() {
      if (timer) { clearTimeout(timer); timer = null; }
      if (box.checked) {
        var ms = parseInt(box.getAttribute("data-interval"), 10) || 5000;
        timer = setTimeout(function () { window.location.reload(); }, ms);
      }
    }
    box.addEventListener("change", function () {
      try { window.localStorage.setItem(key, box.checked ? "on" : "off"); } catch (e) { /* ignore */ }
      arm();
    });
    arm();
  }

  // "Load more": fetches the bytes before the ones shown from the raw /log/ endpoint and
  // prepends them (the raw answer starts with Spark's "==== Bytes a-b of n of … ====" line).
  function setupLogPaging() {
    var btn = document.getElementById("log-load-more");
    var pre = document.getElementById("log-text");
    var range = document.getElementById("log-range");
    if (!btn || !pre) return;
    btn.addEventListener("click", function () {
      var start = parseInt(btn.getAttribute("data-start"), 10) || 0;
      var len = parseInt(btn.getAttribute("data-length"), 10) || 102400;
      if (start <= 0) return;
      var from = Math.max(0, start - len);
      var url = btn.getAttribute("data-url") + "&offset=" + from + "&byteLength=" + (start - from);
      btn.disabled = true;
      fetch(url, { credentials: "same-origin" }).then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      }).then(function (t) {
        var nl = t.indexOf("\n");
        var body = t.startsWith("==== ") && nl >= 0 ? t.slice(nl + 1) : t;
        pre.textContent = body + pre.textContent;
        btn.setAttribute("data-start", String(from));
        var end = btn.getAttribute("data-end");
        var total = btn.getAttribute("data-total");
        if (range) range.textContent = "Bytes " + from + "-" + end + " of " + total;
        btn.disabled = from <= 0;
        if (from <= 0) btn.textContent = "Start of log";
      }).catch(function (e) {
        btn.disabled = false;
        btn.textContent = "Load more (failed: " + e.message + ")";
      });
    });
  }

  function init() {
    setupSorting();
    setupKillConfirm();
    setupRefresh();
    setupLogPaging();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
