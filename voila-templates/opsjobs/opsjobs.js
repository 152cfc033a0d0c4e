/* opsjobs dashboard bridge: clicks on [data-oj] elements and a 5 s tick (while the browser tab
   is visible) are written into the hidden bridge text widget, which syncs them to the kernel.
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
  document.addEventListener("click", function (event) {
    var el = event.target.closest ? event.target.closest("[data-oj]") : null;
    if (!el) { return; }
    event.preventDefault();
    send(el.getAttribute("data-oj"));
  });
  setInterval(function () {
    if (document.visibilityState === "visible") { send("tick:"); }
  }, 5000);
})();
