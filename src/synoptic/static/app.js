// Bring a cited sentence into view. No inline handlers: the CSP allows only this file.
document.addEventListener("DOMContentLoaded", () => {
  const mark = document.getElementById("hl");
  if (mark) {
    mark.scrollIntoView({ block: "center" });
    mark.classList.add("flash");
  }
});

// Corrections from the story page: split an article off, merge the runner-up story in. They
// post JSON to the API as any client does; a server with a write token asks for it once per
// tab (kept in sessionStorage, never in the page).
const TOKEN_KEY = "synoptic-write-token";

async function post(url, body, token) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  return fetch(url, { method: "POST", headers, body: JSON.stringify(body) });
}

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button.correct");
  if (!button) return;
  const { action, story, article, other } = button.dataset;
  const question =
    action === "split"
      ? "Move this article out of the story, into a story of its own?"
      : "Merge that story into this one?";
  if (!window.confirm(question)) return;
  const url = `/api/stories/${encodeURIComponent(story)}/${action}`;
  const body = action === "split" ? { articles: [article] } : { other };
  const said = document.querySelector(".correction-status");
  button.disabled = true;
  try {
    let token = sessionStorage.getItem(TOKEN_KEY);
    let response = await post(url, body, token);
    if (response.status === 401) {
      token = window.prompt("This server needs its write token (SYNOPTIC_TOKEN):");
      if (!token) return;
      response = await post(url, body, token);
      if (response.ok) sessionStorage.setItem(TOKEN_KEY, token);
    }
    const result = await response.json().catch(() => ({}));
    if (!response.ok) {
      if (said) said.textContent = `Not done: ${result.detail || response.statusText}`;
      return;
    }
    window.location.assign(`/stories/${encodeURIComponent(result.story)}`);
  } finally {
    button.disabled = false;
  }
});
