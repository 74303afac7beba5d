// The workspace pages' behaviour (served from /static: the CSP allows no inline script).
// A citation highlights its transcript line and moves the recording to the line's start; a line's
// play button plays from there; the first play is recorded in the audit trail (POST .../play with the
// session's CSRF token from the page's meta tag); a form marked .confirm asks before it posts.
(function () {
  "use strict";
  var current = null;

  function audio() { return document.getElementById("recording"); }

  function highlight(id) {
    var line = id ? document.getElementById(id) : null;
    if (!line || !line.classList.contains("line")) { return null; }
    if (current) { current.classList.remove("hl"); }
    line.classList.add("hl");
    current = line;
    return line;
  }

  function seek(start, play) {
    var player = audio();
    var at = parseFloat(start);
    if (!player || isNaN(at)) { return; }
    player.currentTime = at;
    if (play) { player.play(); }
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!target || !target.closest) { return; }
    var cite = target.closest("a.cite");
    if (cite) {
      var line = highlight(cite.getAttribute("href").slice(1));
      if (line) { seek(line.getAttribute("data-start"), false); }
      return;
    }
    var play = target.closest("button.play");
    if (play) {
      highlight(play.closest("li.line").id);
      seek(play.getAttribute("data-start"), true);
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.classList && form.classList.contains("confirm") && !window.confirm(form.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  function recordPlay(player) {
    var token = document.querySelector('meta[name="csrf-token"]');
    var id = player.getAttribute("data-encounter");
    if (!token || !id) { return; }
    fetch("/api/encounters/" + encodeURIComponent(id) + "/play", {
      method: "POST", credentials: "same-origin", headers: {"X-CSRF-Token": token.getAttribute("content")}
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var player = audio();
    if (player) {
      player.addEventListener("play", function () { recordPlay(player); }, {once: true});
    }
  });

  window.addEventListener("hashchange", function () { highlight(decodeURIComponent(location.hash.slice(1))); });
  document.addEventListener("DOMContentLoaded", function () {
    if (location.hash) { highlight(decodeURIComponent(location.hash.slice(1))); }
  });
}());
