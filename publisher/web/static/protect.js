// The protection progress bar of a release page (polls protection.json; the page reloads when
// the job ends) and the new-release form's submit button (disabled while the upload runs).
(function () {
  var form = document.getElementById("new-release");
  if (form) {
    form.addEventListener("submit", function (event) {
      if (event.submitter && event.submitter.name === "show_accuracy") return;
      var button = document.getElementById("upload");
      if (!button) return;
      // after this event, so the button's own value is still sent
      setTimeout(function () {
        button.disabled = true;
        button.setAttribute("aria-busy", "true");
        var busy = button.getAttribute("data-busy");
        if (busy) button.textContent = busy;
      }, 0);
    });
  }
  var box = document.getElementById("protection");
  if (!box) return;
  var url = box.getAttribute("data-url");
  var started = box.getAttribute("data-status");
  if (started !== "pending" && started !== "running") return;
  function set(id, text) {
    var el = document.getElementById(id);
    if (el) el.textContent = text;
  }
  function show(v) { return v === null || v === undefined ? "…" : String(v); }
  function tick() {
    fetch(url, {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { return r.json(); })
      .then(function (p) {
        if (p.status !== "pending" && p.status !== "running") { window.location.reload(); return; }
        set("protection-status", p.status_label);
        set("protection-phase", p.phase_label);
        set("protection-cells", show(p.cells));
        set("protection-primaries", show(p.primaries));
        set("protection-left", show(p.primaries_left));
        var bar = document.getElementById("protection-bar");
        if (bar) {
          bar.value = p.percent;
          bar.textContent = p.percent + "%";
          bar.setAttribute("aria-valuenow", String(p.percent));
          bar.setAttribute("aria-valuetext", p.percent + "% · " + p.phase_label);
        }
        setTimeout(tick, 1500);
      })
      .catch(function () { setTimeout(tick, 5000); });
  }
  // the meta refresh is for browsers without JavaScript only (it sits in <noscript>)
  setTimeout(tick, 1000);
})();
