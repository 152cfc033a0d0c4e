/* opsjobs dashboard bridge: clicks on [data-oj] elements, the results' checkboxes and a tick
   (every 5 s, every second while a running job's live output is shown; only while the browser
   tab is visible and the auto-refresh is not paused) are written into the hidden bridge text
   widget, which syncs them to the kernel.
   When the page closes, the ticks stop and the kernel is left idle (and culled). */
(function () {
  "use strict";
  var seq = 0;
  var lastCommand = 0;
  function send(command) {
    var input = document.querySelector(".opsjobs-bridge input");
    if (!input) { return false; }
    seq += 1;
    input.value = command + "|" + Date.now() + "-" + seq;
    input.dispatchEvent(new Event("input", { bubbles: true }));
    return true;
  }
  window.opsjobsSend = send;
  // "Sign out" in the header: POST /logout (XSRF-checked), which clears the login cookie and
  // returns to the sign-in page; without an _xsrf cookie, GET /logout does the same.
  function signOut() {
    var marker = document.getElementById("oj-base");
    var base = (marker && marker.getAttribute("data-base")) || "/";
    var match = document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/);
    if (!match) { window.location.href = base + "logout"; return; }
    var form = document.createElement("form");
    form.method = "post";
    form.action = base + "logout";
    var field = document.createElement("input");
    field.type = "hidden";
    field.name = "_xsrf";
    field.value = decodeURIComponent(match[1]);
    form.appendChild(field);
    document.body.appendChild(form);
    form.submit();
  }
  document.addEventListener("click", function (event) {
    var out = event.target.closest ? event.target.closest("[data-oj-signout]") : null;
    if (out) { event.preventDefault(); signOut(); }
  });
  function command(text) {
    lastCommand = Date.now();
    send(text);
  }
  document.addEventListener("click", function (event) {
    var el = event.target.closest ? event.target.closest("[data-oj]") : null;
    if (!el) { return; }
    event.preventDefault();
    command(el.getAttribute("data-oj"));
  });
  // a results checkbox: every box of the page as it is now (a later message replaces an
  // earlier one still waiting to be sent, so each carries the whole page)
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!box.classList) { return; }
    var table = box.closest(".opsjobs-results-table");
    if (!table) { return; }
    var boxes = table.querySelectorAll("input.opsjobs-select");
    if (box.classList.contains("opsjobs-select-page")) {
      boxes.forEach(function (b) { b.checked = box.checked; });
    } else if (!box.classList.contains("opsjobs-select")) {
      return;
    }
    var on = [], off = [];
    boxes.forEach(function (b) { (b.checked ? on : off).push(b.getAttribute("data-job")); });
    command("select:" + JSON.stringify({ on: on, off: off }));
  });
  // "refreshed N s ago": the kernel bumps data-seq at each refresh; the page counts from then
  var shownSeq = null, refreshedAt = Date.now();
  function paused() {
    return document.querySelector('.opsjobs-refreshed[data-paused="1"]') !== null;
  }
  function showRefreshed() {
    var el = document.querySelector(".opsjobs-refreshed");
    if (!el) { return; }
    if (el.getAttribute("data-seq") !== shownSeq) {
      shownSeq = el.getAttribute("data-seq");
      refreshedAt = Date.now();
    }
    var s = Math.floor((Date.now() - refreshedAt) / 1000);
    var ago = s < 1 ? "just now" : s < 60 ? s + " s ago" : Math.floor(s / 60) + " min " + (s % 60) + " s ago";
    var text = (paused() ? "auto-refresh paused · refreshed " : "refreshed ") + ago;
    if (el.textContent !== text) { el.textContent = text; }
  }
  // every 5 s; every second while a running job's live output is shown (following it live);
  // none while paused, nor within a second of a command (its answer redraws anyway, and a
  // tick sent meanwhile would replace a command still waiting to be sent)
  var beat = 0;
  setInterval(function () {
    showRefreshed();
    if (document.visibilityState !== "visible" || paused()) { return; }
    beat += 1;
    if (Date.now() - lastCommand < 1000) { return; }
    if (beat % 5 === 0 || document.querySelector(".oj-live")) { send("tick:"); }
  }, 1000);
})();
