// passkey.js runs the WebAuthn ceremony of the page's form[data-passkey]:
// "create" adds a passkey, "get" asks for one, and "signin" (the sign-in
// page) asks for any passkey of the site, both as passkey autofill on the
// email field (conditional mediation, begun at page load where the
// browser has it) and from the form's button. The server renders the
// options (data-options, WebAuthn's JSON with base64url binary fields);
// when the form is submitted, this passes them to the browser's
// navigator.credentials, and posts the answer back as JSON in the form's
// credential field, so that the form's own checks (CSRF, rate limits)
// apply as to any other form. It is the only script Latchkey's pages run,
// loaded from this server under a Content-Security-Policy that allows
// nothing inline.
(function () {
  "use strict";
  var form = document.querySelector("form[data-passkey]");
  if (!form) {
    return;
  }
  var status = document.getElementById("passkey-status");

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer), s = "";
    for (var i = 0; i < bytes.length; i++) {
      s += String.fromCharCode(bytes[i]);
    }
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function fromBase64url(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) {
      s += "=";
    }
    var bin = atob(s), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) {
      bytes[i] = bin.charCodeAt(i);
    }
    return bytes;
  }

  function options() {
    var o = JSON.parse(form.dataset.options), pk = o.publicKey;
    pk.challenge = fromBase64url(pk.challenge);
    if (pk.user) {
      pk.user.id = fromBase64url(pk.user.id);
    }
    [pk.excludeCredentials, pk.allowCredentials].forEach(function (list) {
      (list || []).forEach(function (c) { c.id = fromBase64url(c.id); });
    });
    return { publicKey: pk };
  }

  function answer(cred) {
    var r = cred.response, out = {
      id: cred.id, rawId: toBase64url(cred.rawId), type: cred.type,
      clientExtensionResults: cred.getClientExtensionResults(),
      response: { clientDataJSON: toBase64url(r.clientDataJSON) }
    };
    if (cred.authenticatorAttachment) {
      out.authenticatorAttachment = cred.authenticatorAttachment;
    }
    if (r.attestationObject) {
      out.response.attestationObject = toBase64url(r.attestationObject);
      if (r.getTransports) {
        out.response.transports = r.getTransports();
      }
    }
    if (r.authenticatorData) {
      out.response.authenticatorData = toBase64url(r.authenticatorData);
      out.response.signature = toBase64url(r.signature);
      if (r.userHandle) {
        out.response.userHandle = toBase64url(r.userHandle);
      }
    }
    return out;
  }

  // The answer goes in the form's credential field, or the one
  // data-field names (the re-authentication form posts the action's own
  // fields, which may hold a credential of their own).
  var field = form.elements[form.dataset.field || "credential"];

  function send(cred) {
    field.value = JSON.stringify(answer(cred));
    form.submit();
  }

  // On the sign-in page the browser may offer the site's passkeys among
  // the email field's suggestions (autocomplete="username webauthn"): the
  // request waits, unseen, until the user picks one. It is aborted if the
  // user presses the button instead, since a browser runs one request at
  // a time. data-conditional says it was begun (for tests, and for
  // anyone wondering why no suggestion shows).
  var conditional = null;
  if (form.dataset.passkey === "signin" && window.PublicKeyCredential &&
      PublicKeyCredential.isConditionalMediationAvailable) {
    PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
      if (!available || field.value) {
        return;
      }
      conditional = new AbortController();
      var o = options();
      o.mediation = "conditional";
      o.signal = conditional.signal;
      navigator.credentials.get(o).then(send, function () {
        // Aborted for the button, or nothing picked: the button and the
        // password remain.
      });
      form.dataset.conditional = "started";
    }, function () {});
  }

  form.addEventListener("submit", function (ev) {
    if (field.value) {
      return;
    }
    ev.preventDefault();
    if (!window.PublicKeyCredential) {
      status.textContent = "This browser cannot use passkeys.";
      status.hidden = false;
      return;
    }
    if (conditional) {
      conditional.abort();
      conditional = null;
    }
    var ceremony = form.dataset.passkey === "create"
      ? navigator.credentials.create(options())
      : navigator.credentials.get(options());
    ceremony.then(send, function () {
      status.textContent = "The passkey was not used. Try again, or use another way.";
      status.hidden = false;
    });
  });
})();
