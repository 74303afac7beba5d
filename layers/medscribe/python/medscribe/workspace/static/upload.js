// The upload page (served from /static: the CSP allows no inline script). Asks the app for a presigned
// POST for the chosen file (POST /api/uploads with the session's CSRF token from the page's meta tag),
// then posts the file straight to the bucket with the form's fields, showing progress and the outcome.
// The bucket post uses XMLHttpRequest because fetch reports no upload progress.
(function () {
  "use strict";

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function say(text, failed) {
    var status = document.getElementById("upload-status");
    status.textContent = text;
    status.classList.toggle("error", Boolean(failed));
  }

  function askForForm(kind, folder, file) {
    return fetch("/api/uploads", {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf()},
      body: JSON.stringify({kind: kind, folder: folder || null, filename: file.name, size: file.size})
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) { throw new Error(body.error || ("the app answered HTTP " + response.status)); }
        return body;
      });
    });
  }

  function s3Message(text) {
    var parsed = new DOMParser().parseFromString(text || "", "application/xml");
    var message = parsed.querySelector("Message");
    var code = parsed.querySelector("Code");
    return [code && code.textContent, message && message.textContent].filter(Boolean).join(": ");
  }

  function postToBucket(signed, file, progress) {
    return new Promise(function (resolve, reject) {
      var data = new FormData();
      Object.keys(signed.fields).forEach(function (name) { data.append(name, signed.fields[name]); });
      data.append("file", file);  // last: S3 ignores every field after the file
      var request = new XMLHttpRequest();
      request.open("POST", signed.url);
      request.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) { progress.value = Math.round(100 * event.loaded / event.total); }
      });
      request.addEventListener("load", function () {
        if (request.status >= 200 && request.status < 300) { resolve(signed.key); return; }
        reject(new Error(s3Message(request.responseText) || ("the bucket answered HTTP " + request.status)));
      });
      request.addEventListener("error", function () { reject(new Error("the bucket could not be reached")); });
      request.send(data);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("upload");
    if (!form) { return; }
    var progress = document.getElementById("upload-progress");
    var result = document.getElementById("upload-result");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var file = form.elements.file.files[0];
      if (!file) { say("Choose a file first.", true); return; }
      var kind = form.elements.kind.value;
      if (file.size > Number(form.getAttribute("data-max-" + kind))) {
        say("The file is larger than the upload limit for " + kind + ".", true);
        return;
      }
      var button = form.querySelector("button[type=submit]");
      button.disabled = true;
      result.hidden = true;
      progress.hidden = false;
      progress.value = 0;
      say("Uploading " + file.name + " …");
      askForForm(kind, form.elements.folder.value, file)
        .then(function (signed) { return postToBucket(signed, file, progress); })
        .then(function (key) {
          progress.value = 100;
          say("Uploaded as " + key + ". It appears in the encounter list once the pipeline has registered it.");
          var link = document.getElementById("upload-list");
          link.setAttribute("href", "/?folder=" + encodeURIComponent(key.slice(0, key.lastIndexOf("/"))));
          result.hidden = false;
          form.reset();
        })
        .catch(function (error) { say("Upload failed: " + error.message, true); })
        .then(function () { button.disabled = false; });
    });
  });
}());
