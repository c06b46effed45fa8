// Bring a cited sentence into view. No inline handlers: the CSP allows only this file.
document.addEventListener("DOMContentLoaded", () => {
  const mark = document.getElementById("hl");
  if (mark) {
    mark.scrollIntoView({ block: "center" });
    mark.classList.add("flash");
  }
});
