// Polls the publication progress of a release while it is being published (no other JS).
(function () {
  var box = document.getElementById("progress");
  if (!box) return;
  var url = box.getAttribute("data-url");
  function tick() {
    fetch(url, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (p) {
      document.getElementById("progress-status").textContent = p.status_label;
      document.getElementById("progress-step").textContent = p.step_label;
      document.getElementById("progress-bar").value = p.percent;
      document.getElementById("progress-message").textContent = p.message || "";
      var state = document.getElementById("release-state");
      if (state && state.textContent !== p.state_label) { window.location.reload(); return; }
      if (p.status === "pending" || p.status === "running") setTimeout(tick, 2000);
    }).catch(function () { setTimeout(tick, 5000); });
  }
  setTimeout(tick, 1500);
})();
