/* opsjobs dashboard bridge: clicks on [data-oj] elements and a tick (every 5 s, every second
   while a running job's live output is shown; only while the browser tab is visible) are
   written into the hidden bridge text widget, which syncs them to the kernel.
   When the page closes, the ticks stop and the kernel is left idle (and culled). */
(function () {
  "use strict";
  var seq = 0;
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
  document.addEventListener("click", function (event) {
    var el = event.target.closest ? event.target.closest("[data-oj]") : null;
    if (!el) { return; }
    event.preventDefault();
    send(el.getAttribute("data-oj"));
  });
  // every 5 s; every second while a running job's live output is shown (following it live)
  var beat = 0;
  setInterval(function () {
    if (document.visibilityState !== "visible") { return; }
    beat += 1;
    if (beat % 5 === 0 || document.querySelector(".oj-live")) { send("tick:"); }
  }, 1000);
})();
