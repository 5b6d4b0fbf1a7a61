// EHR simulator: acts as an EHR's CDS client. Each request is prepared and signed by the simulator
// backend, then sent by this page to the service's real endpoint; cards come back rendered by the
// backend (safe markdown), and accept / override send real feedback (FEEDBACK-2).
(function () {
  "use strict";
  let patient = null;
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function setStatus(text, kind) {
    const s = $("#status");
    s.textContent = text;
    s.className = "status" + (kind ? " " + kind : "");
  }

  async function postJson(url, body, headers) {
    const resp = await fetch(url, {
      method: "POST",
      headers: Object.assign({ "Content-Type": "application/json" }, headers || {}),
      body: JSON.stringify(body),
    });
    const text = await resp.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
    return { status: resp.status, ok: resp.ok, json: json, text: text };
  }

  function problem(result) {
    const issue = result.json && result.json.issue && result.json.issue[0];
    if (result.status === 401) return "401 Unauthorized: the service did not accept the simulator's signed token";
    return result.status + (issue ? ": " + issue.diagnostics : "");
  }

  // ---- patients --------------------------------------------------------------------------
  function pick(id) {
    patient = id;
    $$(".patient").forEach((b) => b.classList.toggle("selected", b.dataset.patient === id));
    $$(".patient-chart").forEach((a) => { a.hidden = a.dataset.patient !== id; });
    $("#no-patient").hidden = true;
    $("#workflow").hidden = false;
    $("#cards").replaceChildren();
    $("#orders-list").replaceChildren();
    $("#orders-placed").hidden = true;
    setStatus("");
  }

  // ---- firing a hook ---------------------------------------------------------------------
  async function fire(hook) {
    if (!patient) return;
    const drafts = $$("input[name=draft]:checked").map((c) => c.value);
    if ((hook === "order-select" || hook === "order-sign") && drafts.length === 0) {
      setStatus("Pick at least one draft order first.", "error");
      return;
    }
    setStatus("Firing " + hook + "…");
    $("#cards").replaceChildren();
    $("#card-list").setAttribute("aria-busy", "true");  // announce the cards once, when they are all in
    try {
      const prepared = await postJson("simulator/api/calls", { patient: patient, hook: hook, drafts: drafts, selected: drafts });
      if (!prepared.ok) { setStatus("Could not prepare the request: " + problem(prepared), "error"); return; }
      const calls = prepared.json.calls;
      const results = await Promise.all(calls.map(callService));
      const total = results.reduce((a, b) => a + b, 0);
      setStatus(hook + ": " + calls.length + " service(s) called, " + total + " card(s).", "ok");
    } finally {
      $("#card-list").setAttribute("aria-busy", "false");
    }
  }

  async function callService(call) {
    const section = el("section", { class: "service-result", "data-service": call.service_id });
    const head = el("h3", {}, call.title + " ");
    head.appendChild(el("code", {}, call.service_id));
    const state = el("span", { class: "call-state small muted" }, " calling…");
    head.appendChild(state);
    section.appendChild(head);
    call.notes.forEach((n) => section.appendChild(el("p", { class: "note small" }, n)));
    const body = el("div", { class: "service-cards" });
    section.appendChild(body);
    $("#cards").appendChild(section);

    const started = performance.now();
    const result = await postJson(call.url, call.request, { Authorization: "Bearer " + call.token });
    const ms = Math.round(performance.now() - started);
    const raw = el("details", { class: "raw" });
    raw.appendChild(el("summary", {}, "Request and response JSON"));
    raw.appendChild(el("pre", {}, "POST " + call.aud + "\nAuthorization: Bearer <ES384 JWT, kid and jku of the simulator>\n\n" +
      JSON.stringify(call.request, null, 2)));
    raw.appendChild(el("pre", {}, "HTTP " + result.status + "\n\n" + (result.json ? JSON.stringify(result.json, null, 2) : result.text)));
    section.appendChild(raw);
    if (!result.ok) {
      state.textContent = " failed in " + ms + " ms";
      body.appendChild(el("p", { class: "error" }, problem(result)));
      return 0;
    }
    const rendered = await postJson("simulator/api/cards", { service_id: call.service_id, response: result.json });
    if (!rendered.ok) { body.appendChild(el("p", { class: "error" }, problem(rendered))); return 0; }
    body.innerHTML = rendered.json.html; // rendered and sanitised by the server (safe_markdown, autoescape)
    state.textContent = " " + rendered.json.count + " card(s) in " + ms + " ms";
    return rendered.json.count;
  }

  // ---- feedback ----------------------------------------------------------------------------
  async function sendFeedback(card, item) {
    const service = card.dataset.serviceId;
    const path = "/cds-services/" + service + "/feedback";
    const status = $(".feedback-status", card);
    const token = await postJson("simulator/api/token", { path: path });
    if (!token.ok) { status.textContent = "Could not sign the feedback: " + problem(token); return false; }
    item.card = card.dataset.cardUuid;
    item.outcomeTimestamp = new Date().toISOString();
    const result = await postJson(path.slice(1), { feedback: [item] }, { Authorization: "Bearer " + token.json.token });
    if (!result.ok) {
      status.textContent = "Feedback was refused: " + problem(result);
      status.className = "feedback-status small error";
      return false;
    }
    return true;
  }

  function finish(card, text) {
    $$("button", card).forEach((b) => { b.disabled = true; });
    $(".override", card) && ($(".override", card).hidden = true);
    card.classList.add("done");
    const status = $(".feedback-status", card);
    status.textContent = text;
    status.className = "feedback-status small ok";
  }

  function describe(r) {
    const concept = r.medicationCodeableConcept || r.code || {};
    const dosage = (r.dosageInstruction && r.dosageInstruction[0] && r.dosageInstruction[0].text) ||
      (r.note && r.note[0] && r.note[0].text) || "";
    return r.resourceType + " (" + r.status + "): " + (concept.text || "") + (dosage ? " — " + dosage : "");
  }

  function applyActions(actions) {
    // As an EHR would: "create" adds a draft order, "delete" removes one of the picked drafts,
    // "update" replaces it (ACT-1); the simulator shows the result under the draft-order picker.
    (actions || []).forEach((a) => {
      let text = null;
      if (a.type === "create" && a.resource) text = "Created " + describe(a.resource);
      if (a.type === "update" && a.resource) text = "Updated " + describe(a.resource);
      if (a.type === "delete" && a.resourceId) {
        const id = String(a.resourceId).split("/").pop();
        const box = document.getElementById(id);  // the picker's checkbox has the draft's id
        if (box && box.type === "checkbox") box.checked = false;
        text = "Removed " + a.resourceId + (a.description ? " — " + a.description : "");
      }
      if (text) {
        $("#orders-list").appendChild(el("li", {}, text));
        $("#orders-placed").hidden = false;
      }
    });
  }

  async function accept(button) {
    const card = button.closest(".card");
    if (!button.dataset.suggestionUuid) return;
    const ok = await sendFeedback(card, { outcome: "accepted", acceptedSuggestions: [{ id: button.dataset.suggestionUuid }] });
    if (!ok) return;
    applyActions(JSON.parse(button.dataset.actions || "[]"));
    const group = button.closest(".suggestions");
    const others = $$("button.suggestion", card).filter((b) => b !== button && !b.disabled);
    if (group && group.dataset.selection === "any" && others.length) {
      // CDS Hooks 2.0 selectionBehavior "any": the suggestions are independent — accepting one leaves the others
      // available (e.g. three care-gap orders); only the accepted one is done.
      button.disabled = true;
      button.classList.add("accepted");
      button.setAttribute("aria-pressed", "true");
      const status = $(".feedback-status", card);
      status.textContent = "Accepted “" + button.textContent.trim() + "” — feedback recorded; the other suggestions are still available.";
      status.className = "feedback-status small ok";
      return;
    }
    finish(card, "Accepted “" + button.textContent.trim() + "” — feedback recorded.");
  }

  async function override(form) {
    const card = form.closest(".card");
    const item = { outcome: "overridden" };
    const chosen = $("input[type=radio]:checked", form);
    const comment = $("textarea", form).value.trim();
    if (chosen || comment) {
      item.overrideReason = {};
      if (chosen) item.overrideReason.reason = { system: chosen.dataset.system, code: chosen.dataset.code, display: chosen.dataset.display };
      if (comment) item.overrideReason.userComment = comment;
    }
    const ok = await sendFeedback(card, item);
    if (ok) finish(card, "Overridden" + (chosen ? " (" + chosen.dataset.display + ")" : "") + " — feedback recorded.");
  }

  // ---- SMART links -------------------------------------------------------------------------
  // As an EHR does (LINK-1): a smart link is opened with `iss` and `launch` added; its appContext
  // reaches the app in the token response of the simulator's demo authorization server (LINK-2).
  async function launchSmart(link) {
    const win = window.open("", "_blank");  // opened within the click, or a popup blocker refuses it
    const status = $(".feedback-status", link.closest(".card"));
    const body = { patient: patient };
    if (link.dataset.appContext) body.appContext = link.dataset.appContext;
    const result = await postJson("simulator/api/launch", body);
    if (!result.ok) {
      if (win) win.close();
      status.textContent = "Could not launch the SMART link: " + problem(result);
      status.className = "feedback-status small error";
      return;
    }
    const params = new URLSearchParams({ iss: result.json.iss, launch: result.json.launch });
    const url = link.href + (link.href.indexOf("?") >= 0 ? "&" : "?") + params.toString();
    if (win) { win.opener = null; win.location = url; } else { location.href = url; }
  }

  // ---- wiring ------------------------------------------------------------------------------
  $$(".patient").forEach((b) => b.addEventListener("click", () => pick(b.dataset.patient)));
  $$(".fire").forEach((b) => b.addEventListener("click", () => fire(b.dataset.hook)));
  $("#cards").addEventListener("click", (ev) => {
    const t = ev.target;
    if (t.classList.contains("smart-link")) { ev.preventDefault(); launchSmart(t); }
    else if (t.classList.contains("suggestion")) accept(t);
    else if (t.classList.contains("override-open")) { const f = $(".override", t.closest(".card")); f.hidden = !f.hidden; }
    else if (t.classList.contains("override-cancel")) t.closest("form").hidden = true;
  });
  $("#cards").addEventListener("submit", (ev) => { ev.preventDefault(); override(ev.target); });
  const wanted = new URLSearchParams(location.search).get("patient");
  if (wanted && document.getElementById("pick-" + wanted)) pick(wanted);
})();
