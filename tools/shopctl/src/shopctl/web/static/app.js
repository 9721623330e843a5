// shopctl web: draws what the backend streams (server-sent events). Plain JS, no
// dependencies. Text from the wire only ever goes into textContent, never HTML.
"use strict";

const MAX_ORDERS_SHOWN = 50;
const state = {
  orders: new Map(), // order id -> {summary, timeline: [step]}
  services: ["order", "inventory", "payment", "email"],
  capabilities: {orders: {ok: false}, replay: {ok: false}},
  depths: [],
  highlight: null, // the order placed from this page
  source: null,
};

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("data-") || key === "title" || key === "type" || key === "style") node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function $(id) { return document.getElementById(id); }

// --- the stream -----------------------------------------------------------

function connect() {
  if (state.source) state.source.close();
  const source = new EventSource("/api/stream");
  state.source = source;
  source.addEventListener("snapshot", (e) => onSnapshot(JSON.parse(e.data)));
  source.addEventListener("step", (e) => onStep(JSON.parse(e.data)));
  source.addEventListener("depths", (e) => onDepths(JSON.parse(e.data)));
  source.addEventListener("status", (e) => onStatus(JSON.parse(e.data)));
  source.addEventListener("gap", (e) => onGap(JSON.parse(e.data)));
  source.onerror = () => onStatus({connected: false, message: "lost the view's server; reconnecting…"});
}

function onSnapshot(data) {
  state.orders = new Map();
  for (const order of data.orders) state.orders.set(order.order_id, {summary: order, timeline: order.timeline});
  if (data.services) state.services = data.services;
  state.capabilities = data.capabilities;
  $("gap").hidden = true;
  renderAllOrders();
  onDepths(data.depths);
  onStatus(data.status);
  renderCapabilities(data.payment_tokens || []);
}

function onStep({step, order}) {
  let known = state.orders.get(order.order_id);
  const isNew = !known;
  if (isNew) {
    known = {summary: order, timeline: []};
    state.orders.set(order.order_id, known);
  }
  known.summary = order;
  known.timeline.push(step);
  if (known.timeline.length > 200) known.timeline.shift();
  const card = orderCard(order.order_id, known);
  const old = document.querySelector(`article.order[data-order-id="${CSS.escape(order.order_id)}"]`);
  if (old) old.replaceWith(card);
  else $("orders").prepend(card);
  trimOrders();
  $("no-orders").hidden = state.orders.size > 0;
}

function onStatus(status) {
  const pill = $("broker");
  pill.textContent = status.connected ? "broker: connected" : `broker: ${status.message}`;
  pill.classList.toggle("ok", Boolean(status.connected));
}

function onGap({dropped}) {
  $("gap-text").textContent =
    `⚠ This browser fell behind: ${dropped} update(s) were dropped, so some orders below may miss steps.`;
  $("gap").hidden = false;
}

// --- orders -----------------------------------------------------------------

function renderAllOrders() {
  const list = [...state.orders.values()]
    .sort((a, b) => (a.summary.started_at < b.summary.started_at ? 1 : -1))
    .slice(0, MAX_ORDERS_SHOWN);
  $("orders").replaceChildren(...list.map((o) => orderCard(o.summary.order_id, o)));
  $("no-orders").hidden = state.orders.size > 0;
}

function trimOrders() {
  const cards = $("orders").querySelectorAll("article.order");
  for (let i = MAX_ORDERS_SHOWN; i < cards.length; i++) cards[i].remove();
}

function orderCard(orderId, {summary, timeline}) {
  const flags = [];
  if (summary.retries) flags.push(el("span", {class: "flag retry", text: `↻ ${summary.retries} retr${summary.retries === 1 ? "y" : "ies"}`}));
  if (summary.dead_letters) flags.push(el("span", {class: "flag", text: `✖ ${summary.dead_letters} dead letter(s)`}));
  const header = el("header", {},
    el("span", {class: "id mono", text: summary.short_id, title: orderId}),
    el("span", {class: `status ${summary.status}`, text: summary.status, "data-status": summary.status}),
    ...flags,
    el("span", {class: "meta", text:
      `began ${summary.started_label} · ${summary.duration_label} · ${summary.steps} step(s)` +
      (summary.dropped ? ` · ${summary.dropped} oldest not shown` : "")}),
  );
  const lanes = el("div", {class: "lanes", style: `--lanes: ${state.services.length}`});
  lanes.append(el("div", {class: "lane-head", text: "time"}), el("div", {class: "lane-head delta", text: "Δ"}));
  for (const service of state.services) lanes.append(el("div", {class: `lane-head svc-${service}`, text: service}));
  for (const step of timeline) {
    lanes.append(
      el("div", {class: "time mono", text: step.at_label, title: step.at}),
      el("div", {class: "delta mono", text: step.since_previous_label, title: `${step.since_start_label} since the order's first message`}),
    );
    const column = Math.max(0, state.services.indexOf(step.service));
    for (let i = 0; i < state.services.length; i++) lanes.append(el("div", {}, i === column ? stepChip(step) : null));
  }
  const card = el("article", {class: "order", "data-order-id": orderId}, header, lanes);
  if (state.highlight === orderId) card.classList.add("highlight");
  return card;
}

const KIND_ICON = {event: "", retry: "↻ ", dead_letter: "✖ ", replay: "⤺ "};

function stepChip(step) {
  const who = step.publisher
    ? `${step.publisher}${step.trusted ? " ✓" : ` ⚠ expected ${step.expected_publisher || "nobody"}`}`
    : "no user_id ⚠";
  const lines = [`${who} · ${step.since_start_label}`];
  if (step.detail) lines.push(step.detail);
  if (step.problem) lines.push(`⚠ ${step.problem}`);
  const chip = el("div", {
    class: `chip kind-${step.kind} svc-${step.service}${step.trusted ? "" : " untrusted"}`,
    "data-event-type": step.event_type,
    "data-kind": step.kind,
    title: `${step.kind} ${step.event_type}\nevent id ${step.event_id || "-"}\n${lines.join("\n")}`,
  }, `${KIND_ICON[step.kind] || ""}${step.event_type}`);
  for (const line of lines) chip.append(el("small", {text: line}));
  if (step.replayable) chip.append(replayButton(step.queue, step.event_id));
  return chip;
}

// --- queues -------------------------------------------------------------------

function onDepths(depths) {
  const previous = JSON.stringify(state.depths.map((d) => d.dead_letters));
  state.depths = depths || [];
  const rows = state.depths.map((d) => {
    if (d.missing) {
      return el("tr", {"data-queue": d.queue}, el("td", {text: d.queue}), el("td", {colSpan: 4, class: "none", text: "not declared yet (service never started)"}));
    }
    return el("tr", {"data-queue": d.queue},
      el("td", {class: "mono", text: d.queue}),
      el("td", {text: String(d.ready), class: d.ready ? "busy" : ""}),
      el("td", {text: String(d.consumers), class: d.consumers ? "" : "none", title: d.consumers ? "" : "no consumer: nothing takes these messages"}),
      el("td", {text: String(d.retrying), class: d.retrying ? "busy" : ""}),
      el("td", {text: d.dead_letters === null ? "?" : String(d.dead_letters), class: d.dead_letters ? "dead" : "", "data-dead-letters": String(d.dead_letters)}),
    );
  });
  document.querySelector("#queues tbody").replaceChildren(...rows);
  if (JSON.stringify(state.depths.map((d) => d.dead_letters)) !== previous) loadLetters();
}

// --- actions ------------------------------------------------------------------

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body),
  });
  let answer = null;
  try { answer = await response.json(); } catch { answer = {error: response.statusText}; }
  return {ok: response.ok, status: response.status, answer};
}

function describeError(answer) {
  if (!answer) return "failed";
  if (answer.error) return answer.error;
  if (Array.isArray(answer.detail)) return answer.detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
  return typeof answer.detail === "string" ? answer.detail : JSON.stringify(answer);
}

function renderCapabilities(tokens) {
  // Without a signing key the server cannot sign customer tokens: one pasted in the
  // form (`shopctl token --customer ID` where the key is) still places the order.
  const orders = state.capabilities.orders || {ok: false};
  const tokenField = $("customer-token");
  tokenField.required = !orders.ok;
  tokenField.placeholder = orders.ok ? "signed by the server" : "required: paste a customer token";
  $("order-why").hidden = orders.ok;
  $("order-why").textContent = orders.why || "";
  const replay = state.capabilities.replay || {ok: false};
  $("replay-why").hidden = replay.ok;
  $("replay-why").textContent = replay.why || "";
  const select = $("payment-token");
  if (!select.options.length) select.replaceChildren(...tokens.map((t) => el("option", {value: t, text: t})));
  document.querySelectorAll("button.replay").forEach((b) => { b.disabled = !replay.ok; });
}

async function loadProducts() {
  const select = $("sku");
  try {
    const response = await fetch("/api/products");
    const products = await response.json();
    if (!response.ok) throw new Error(describeError(products));
    select.replaceChildren(...products.map((p) => el("option", {value: p.sku, text: `${p.name} (${p.sku}) · ${p.price}`})));
  } catch (error) {
    select.replaceChildren(el("option", {value: "KEYBOARD-01", text: "KEYBOARD-01"}));
    $("order-result").textContent = `Products unavailable: ${error.message}`;
  }
}

async function placeOrder(event) {
  event.preventDefault();
  const form = new FormData($("order-form"));
  const body = Object.fromEntries(form.entries());
  body.quantity = Number(body.quantity);
  if (!body.token) delete body.token;
  const result = $("order-result");
  result.className = "";
  result.textContent = "placing…";
  const {ok, answer} = await post("/api/orders", body);
  if (!ok) {
    result.className = "error";
    result.textContent = `Refused: ${describeError(answer)}`;
    return;
  }
  state.highlight = answer.id;
  document.querySelectorAll("article.order.highlight").forEach((c) => c.classList.remove("highlight"));
  result.dataset.orderId = answer.id;
  result.textContent = `Order ${answer.id} accepted (${answer.status}, total ${answer.total} ${answer.currency}). Its events appear on the left as they happen.`;
  const card = document.querySelector(`article.order[data-order-id="${CSS.escape(answer.id)}"]`);
  if (card) card.classList.add("highlight");
}

function replayButton(queue, messageId) {
  const button = el("button", {type: "button", class: "small replay", text: "Replay"});
  button.disabled = !(state.capabilities.replay || {}).ok;
  if (button.disabled) button.title = (state.capabilities.replay || {}).why || "";
  button.addEventListener("click", () => replay(queue, messageId, button));
  return button;
}

async function replay(queue, messageId, button) {
  button.disabled = true;
  const result = $("letters-result");
  const {ok, answer} = await post("/api/dead-letters/replay", {queue, message_id: messageId});
  result.className = ok ? "" : "error";
  result.textContent = ok ? answer.message : `Replay refused: ${describeError(answer)}`;
  if (!ok) button.disabled = false;
  loadLetters();
}

let lettersLoading = null;
async function loadLetters() {
  if (lettersLoading) return lettersLoading;
  lettersLoading = (async () => {
    try {
      const response = await fetch("/api/dead-letters");
      const letters = await response.json();
      if (!response.ok) throw new Error(describeError(letters));
      const items = letters.map((l) => el("li", {"data-message-id": l.message_id || ""},
        el("div", {class: "what", text: `${l.event_type || "?"} · order ${l.order_id ? l.order_id.slice(0, 8) : "-"}`}),
        el("div", {class: "mono", text: `${l.queue} · ${l.reason} · ${l.exception}`}),
        l.exception_message ? el("div", {text: l.exception_message}) : null,
        el("div", {text: `failed ${l.failed_at_label} · attempts ${l.attempts ?? "-"} · replays ${l.replays}`}),
        l.message_id ? replayButton(l.queue, l.message_id) : null,
      ));
      $("letters").replaceChildren(...(items.length ? items : [el("li", {class: "empty", text: "none: every dead-letter queue is empty"})]));
    } catch (error) {
      $("letters").replaceChildren(el("li", {class: "error", text: `cannot read the dead-letter queues: ${error.message}`}));
    } finally {
      lettersLoading = null;
    }
  })();
  return lettersLoading;
}

document.addEventListener("DOMContentLoaded", () => {
  $("order-form").addEventListener("submit", placeOrder);
  $("resync").addEventListener("click", connect);
  $("refresh-letters").addEventListener("click", loadLetters);
  connect();
  loadProducts();
});
