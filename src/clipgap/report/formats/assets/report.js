// Sortable tables: a click on a column header sorts the table body by that column (ascending,
// then descending); footer rows stay last. Numbers ("+0.120 ± 0.010", "1,200,000", "1e-06")
// compare as numbers, a cell "a → b" by b, and missing cells ("—", "n/a", empty) go last in
// either direction. The state is shown by the header's aria-sort attribute and an arrow.
(function () {
  "use strict";
  const NUMBER = /^[+-]?(?:\d[\d,]*(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?(?=$|\s|\u2013)/i;
  const MISSING = new Set(["", "\u2014", "n/a"]);
  const collator = new Intl.Collator("en", { numeric: true, sensitivity: "base" });

  function sortKey(cell) {
    let text = cell ? cell.textContent.replace(/\u2212/g, "-").trim() : "";
    const arrow = text.lastIndexOf("\u2192");
    if (arrow >= 0) text = text.slice(arrow + 1).trim();
    if (MISSING.has(text)) return { missing: true, text: text, number: null };
    const match = NUMBER.exec(text);
    const number = match ? parseFloat(match[0].replace(/,/g, "")) : null;
    return { missing: false, text: text, number: number };
  }

  function sortBody(body, column, direction) {
    const rows = Array.from(body.rows).map(function (row) {
      return { row: row, index: Number(row.dataset.index), key: sortKey(row.cells[column]) };
    });
    const numeric = rows.every(function (r) { return r.key.missing || r.key.number !== null; });
    rows.sort(function (a, b) {
      if (a.key.missing || b.key.missing) {
        return a.key.missing === b.key.missing ? a.index - b.index : a.key.missing ? 1 : -1;
      }
      const order = numeric
        ? a.key.number - b.key.number
        : collator.compare(a.key.text, b.key.text);
      return order !== 0 ? direction * order : a.index - b.index;
    });
    rows.forEach(function (r) { body.appendChild(r.row); });
  }

  function makeSortable(table) {
    if (!table.tHead || table.tBodies.length !== 1) return;
    const body = table.tBodies[0];
    Array.from(body.rows).forEach(function (row, i) { row.dataset.index = String(i); });
    const headers = Array.from(table.tHead.rows[0].cells);
    headers.forEach(function (th, column) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      button.title = "Sort by this column";
      while (th.firstChild) button.appendChild(th.firstChild);
      th.appendChild(button);
      th.setAttribute("aria-sort", "none");
      button.addEventListener("click", function () {
        const direction = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
        headers.forEach(function (other) { other.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", direction === 1 ? "ascending" : "descending");
        sortBody(body, column, direction);
      });
    });
  }

  document.querySelectorAll("table").forEach(makeSortable);
})();
