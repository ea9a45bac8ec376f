// After the server refuses a form, bring its first error into view and put the cursor in the
// field it names, so the user does not hunt down a long page for it. Without script the error
// is still beside its field and summarised at the top.
(function () {
  var error = document.querySelector(".field-error");
  if (!error) return;
  var form = error.closest("form");
  var details = error.closest("details");
  if (details) details.open = true;
  var field = null;
  for (var node = error.previousElementSibling; node; node = node.previousElementSibling) {
    if (node.matches("input:not([type=hidden]), select, textarea")) { field = node; break; }
    var inner = node.querySelector && node.querySelector("input:not([type=hidden]), select, textarea");
    if (inner) { field = inner; break; }
  }
  if (!field && form) field = form.querySelector("input:not([type=hidden]), select, textarea");
  error.scrollIntoView({ block: "center" });
  if (field) field.focus({ preventScroll: true });
})();
