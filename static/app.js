// Progressive enhancements; every page works without this file.
(function () {
  "use strict";

  // Copy-to-clipboard buttons: <button data-copy-target="id-of-element">.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy-target"));
    if (!source) return;
    var text = source.value !== undefined ? source.value : source.textContent;
    var status = document.getElementById(button.getAttribute("aria-describedby") || "");
    function done(message) {
      if (status) status.textContent = message;
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { done("Copied to the clipboard."); },
        function () { done("Could not copy: select the token and copy it by hand."); }
      );
    } else {
      if (source.select) source.select();
      try {
        document.execCommand("copy");
        done("Copied to the clipboard.");
      } catch (e) {
        done("Could not copy: select the token and copy it by hand.");
      }
    }
  });

  // Show the fields that belong to the chosen radio option: <fieldset data-shown-when="name=value">.
  function syncConditional() {
    document.querySelectorAll("[data-shown-when]").forEach(function (el) {
      var parts = el.getAttribute("data-shown-when").split("=");
      var checked = document.querySelector('input[name="' + parts[0] + '"]:checked');
      var show = checked && checked.value === parts[1];
      el.hidden = !show;
    });
  }
  document.addEventListener("change", syncConditional);
  document.addEventListener("DOMContentLoaded", syncConditional);
  document.addEventListener("htmx:afterSwap", syncConditional);

  // Create token, for superusers: with Type "Automation token" and a Role chosen, only
  // the scopes that role may use stay selectable (<input data-automation-roles="...">).
  // The server checks again whatever is sent.
  function syncAutomationScopes() {
    var boxes = document.querySelectorAll("input[data-automation-roles]");
    if (!boxes.length) return;
    var type = document.querySelector('input[name="type"]:checked');
    var role = document.querySelector('input[name="role"]:checked');
    var automation = type && type.value === "automation" && role;
    var userToken = !type || type.value !== "automation";
    boxes.forEach(function (box) {
      var allowed = !automation ||
        box.getAttribute("data-automation-roles").split(" ").indexOf(role.value) !== -1;
      // The account's token policy keeps this scope off user tokens.
      if (userToken && box.hasAttribute("data-not-on-user-tokens")) allowed = false;
      box.disabled = !allowed;
      if (!allowed) box.checked = false;
      var label = box.closest("label");
      if (label) label.classList.toggle("disabled", !allowed);
    });
  }
  document.addEventListener("change", syncAutomationScopes);
  document.addEventListener("DOMContentLoaded", syncAutomationScopes);

  // <select data-submit-on-change> (the account switcher) submits its form at once.
  document.addEventListener("change", function (event) {
    var select = event.target.closest("select[data-submit-on-change]");
    if (select && select.form && select.form.requestSubmit) select.form.requestSubmit();
  });
})();
