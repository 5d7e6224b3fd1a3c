// Re-prices the cost page as prices are edited. Everything else is
// rendered on the server; without this script the form still works.
"use strict";
(function () {
  const form = document.getElementById("prices");
  if (!form) {
    return;
  }
  const num = (id) => Number(document.getElementById(id).value) || 0;
  // As fmtDollars on the server: cents, six decimals below a cent.
  const set = (id, v) => {
    document.getElementById(id).textContent = "$" + v.toFixed(v !== 0 && Math.abs(v) < 0.01 ? 6 : 2);
  };
  const puts = Number(document.getElementById("puts").dataset.count);
  const gets = Number(document.getElementById("gets").dataset.count);
  const stored = Number(document.getElementById("stored").dataset.bytes);
  function reprice() {
    const p = puts / 1000 * num("price-put");
    const g = gets / 1000 * num("price-get");
    set("cost-puts", p);
    set("cost-gets", g);
    set("cost-total", p + g);
    set("cost-storage", stored / 1e9 * num("price-gbmonth"));
  }
  form.addEventListener("input", reprice);
})();
