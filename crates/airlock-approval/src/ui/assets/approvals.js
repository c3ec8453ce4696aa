// The approval page's live queue. The server renders every card and history
// row (here only inserted as the server escaped them); this script keeps the
// queue current from /ui/approvals/events, sends decisions to the approvals
// API with the session's CSRF token, and counts time waiting.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="airlock-csrf"]').content;
  const queue = document.getElementById("queue");
  const history = document.querySelector("#history tbody");
  if (!queue || !history) return; // not an approver: nothing live to show

  const fromHtml = (html) => {
    const template = document.createElement("template");
    template.innerHTML = html;
    return template.content.firstElementChild;
  };
  const recount = () => {
    const n = queue.querySelectorAll("article.approval").length;
    document.getElementById("count").textContent = String(n);
    document.getElementById("empty").hidden = n > 0;
    document.title = (n ? "(" + n + ") " : "") + "Approvals · Airlock";
  };
  // Shows an approval as it now stands: its card while pending, else its history row.
  const show = (update) => {
    const card = document.getElementById("approval-" + update.id);
    if (update.card) {
      const fresh = fromHtml(update.card);
      if (card) card.replaceWith(fresh); else queue.append(fresh);
    } else if (card) {
      card.remove();
    }
    if (update.history) {
      const row = document.getElementById("history-" + update.id);
      const fresh = fromHtml("<table><tbody>" + update.history + "</tbody></table>").querySelector("tr");
      if (row) row.replaceWith(fresh); else history.prepend(fresh);
    }
    recount();
    tick();
    loadChanges();
  };

  // What each request will change: asked of the gateway once per card.
  const loadChanges = () => {
    for (const section of queue.querySelectorAll("section.changes[data-changes]")) {
      const url = section.dataset.changes;
      delete section.dataset.changes;
      const status = section.querySelector("p.muted");
      fetch(url, { credentials: "same-origin" })
        .then((r) => (r.ok ? r.text() : Promise.reject(new Error(r.status + " " + r.statusText))))
        .then((html) => {
          if (!html.trim()) { section.remove(); return; }
          const template = document.createElement("template");
          template.innerHTML = html;
          status.replaceWith(template.content);
          section.dataset.loaded = "true";
        })
        .catch((e) => { status.textContent = "Could not tell: " + e.message; });
    }
  };

  // Decisions go to the approvals API, as any client's would.
  queue.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const action = event.submitter && event.submitter.value;
    if (action !== "approve" && action !== "deny") return;
    const id = form.dataset.id;
    const error = form.querySelector(".error");
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => { b.disabled = true; });
    error.textContent = "";
    try {
      const comment = form.elements.comment.value.trim();
      const response = await fetch("/api/approvals/" + encodeURIComponent(id) + "/" + action, {
        method: "POST",
        headers: { "content-type": "application/json", "x-airlock-csrf": csrf },
        body: JSON.stringify(comment ? { comment } : {}),
        credentials: "same-origin",
      });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        const e = body.error || {};
        error.textContent = response.status + " " + (e.code || "") + ": " + (e.message || response.statusText);
        buttons.forEach((b) => { b.disabled = false; });
        return;
      }
      const update = await fetch("/ui/approvals/" + encodeURIComponent(id) + "/fragment", { credentials: "same-origin" });
      if (update.ok) show(await update.json());
    } catch (e) {
      error.textContent = "Could not reach the gateway: " + e;
      buttons.forEach((b) => { b.disabled = false; });
    }
  });

  // Time waiting and time left, in words, every second.
  const span = (ms) => {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 90) return s + " s";
    if (s < 5400) return Math.round(s / 60) + " min";
    return Math.round(s / 3600) + " h";
  };
  const tick = () => {
    const now = Date.now();
    for (const card of queue.querySelectorAll("article.approval")) {
      const created = Number(card.dataset.created);
      const expires = Number(card.dataset.expires);
      card.querySelector("time.age").textContent = "waiting " + span(now - created);
      const expiry = card.querySelector("time.expiry");
      expiry.textContent = expires > now ? "expires in " + span(expires - now) : "expired";
      expiry.classList.toggle("expired-soon", expires - now < 60000);
    }
  };
  setInterval(tick, 1000);
  tick();
  loadChanges();

  // The live queue. After a broken connection the page reloads, so that
  // nothing that happened meanwhile is missed.
  const live = document.getElementById("live");
  let broken = false;
  const events = new EventSource("/ui/approvals/events");
  events.addEventListener("ready", () => {
    if (broken) { location.reload(); return; }
    live.textContent = "live";
    live.classList.add("on");
    document.body.dataset.live = "true";
  });
  events.addEventListener("approval", (event) => show(JSON.parse(event.data)));
  events.addEventListener("resync", () => location.reload());
  events.onerror = () => {
    broken = true;
    live.textContent = "reconnecting…";
    live.classList.remove("on");
    document.body.dataset.live = "false";
  };
})();
