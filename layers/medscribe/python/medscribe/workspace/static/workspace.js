// The workspace pages' behaviour (served from /static: the CSP allows no inline script).
// A citation highlights its transcript line and moves the recording to the line's start; a line's
// play button plays from there; the first play is recorded in the audit trail (POST .../play with the
// session's CSRF token from the page's meta tag); a form marked .confirm asks before it posts.
// An expired session (in AWS the authorizer answers 403 before the app runs, and a page cannot follow a
// redirect from it): before a form is sent the script asks GET /api/session; when that is refused it
// trades the refresh token once (GET /auth/refresh, which sets a new access cookie) and then sends the
// form. When the refresh is refused too, the form is not sent: the page keeps what was typed and says
// to sign in again in another tab, then send it again. Sign-out is sent as it is.
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

  function ok(response) { return response.ok; }
  function refused() { return false; }

  function sessionAlive() {
    return fetch("/api/session", {credentials: "same-origin", cache: "no-store"}).then(ok, refused);
  }

  function refreshed() {
    return fetch("/auth/refresh?next=" + encodeURIComponent("/api/session"),
                 {credentials: "same-origin", cache: "no-store"}).then(ok, refused);
  }

  function expired(form) {
    var note = form.querySelector(".session-expired");
    if (!note) {
      note = document.createElement("p");
      note.className = "session-expired";
      note.setAttribute("role", "alert");
      note.textContent = "Your session has expired. Sign in again in another tab, " +
        "then send this form again: what you typed is still here.";
      form.insertBefore(note, form.firstChild);
    }
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || !form || !form.classList) { return; }  // e.g. the upload page's own flow
    if (form.getAttribute("data-session") === "checked" || /\/logout$/.test(form.getAttribute("action") || "")) {
      form.removeAttribute("data-session");  // the second pass (asked and checked already), or sign-out
      return;
    }
    if (form.classList.contains("confirm") && !window.confirm(form.getAttribute("data-confirm"))) {
      event.preventDefault();
      return;
    }
    event.preventDefault();
    var submitter = event.submitter || null;
    sessionAlive().then(function (alive) { return alive || refreshed(); }).then(function (alive) {
      if (!alive) { expired(form); return; }
      form.setAttribute("data-session", "checked");
      if (form.requestSubmit) { form.requestSubmit(submitter); } else { form.submit(); }
    });
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
