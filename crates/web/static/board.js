// Keeps the board current without a reload: every 5 s ask for the lanes with the last ETag;
// the server answers 304 when nothing changed. The refresh says it is one (X-Seldinger-Refresh),
// so it does not keep an unattended session alive; when the session has timed out, the page says
// so and stops. Without script the page still works (reload).
(function () {
  var lanes = document.getElementById("lanes");
  var status = document.getElementById("board-status");
  if (!lanes || !window.fetch) return;
  function refresh() {
    fetch("/board/lanes?date=" + encodeURIComponent(lanes.dataset.date), {
      headers: { "If-None-Match": lanes.dataset.etag, "X-Seldinger-Refresh": "background" },
      credentials: "same-origin",
    }).then(function (response) {
      if (response.status === 200) {
        lanes.dataset.etag = response.headers.get("ETag") || "";
        return response.text().then(function (html) {
          lanes.innerHTML = html;
          status.textContent = "Updated " + new Date().toLocaleTimeString();
        });
      }
      if (response.status === 401 || response.redirected) {
        clearInterval(timer);
        status.textContent = "Timed out: you were signed out after a time without activity. Reload to sign in again.";
      }
    }).catch(function () {
      status.textContent = "Cannot reach Seldinger; retrying.";
    });
  }
  var timer = setInterval(refresh, 5000);
})();
