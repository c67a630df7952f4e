
(() => {
  const table = document.getElementById("summary");
  const body = table.tBodies[0];
  const headers = Array.from(table.tHead.rows[0].cells);
  headers.forEach((th, column) => {
    th.tabIndex = 0;
    const sort = () => {
      const descending = th.getAttribute("aria-sort") === "ascending";
      headers.forEach((other) => other.removeAttribute("aria-sort"));
      th.setAttribute("aria-sort", descending ? "descending" : "ascending");
      const key = (row) => row.cells[column].dataset.sort;
      const rows = Array.from(body.rows).sort((a, b) => {
        const x = key(a), y = key(b);
        const order = x !== "" && y !== "" && !isNaN(x) && !isNaN(y) ? x - y : x.localeCompare(y);
        return descending ? -order : order;
      });
      body.append(...rows);
    };
    th.addEventListener("click", sort);
    th.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sort(); }
    });
  });
  let hot = [];
  document.addEventListener("mouseover", (event) => {
    const item = event.target.closest ? event.target.closest("li.finding") : null;
    const wanted = item ? [item, ...document.querySelectorAll(`[data-finding="${item.id}"]`)] : [];
    if (wanted.length === hot.length && wanted.every((node, i) => node === hot[i])) return;
    hot.forEach((node) => node.classList.remove("hot"));
    wanted.forEach((node) => node.classList.add("hot"));
    hot = wanted;
  });
  const openTarget = () => {
    const target = location.hash && document.getElementById(location.hash.slice(1));
    const run = target && target.closest("details.run");
    if (run) run.open = true;
  };
  window.addEventListener("hashchange", openTarget);
  openTarget();
  table.classList.add("sortable");
})();
