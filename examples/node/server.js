// Acme POS's side of the ShopiMind sidecar: every bridge route, with node:http only.
//
//   APP_SECRET=... SIDECAR_URL=http://127.0.0.1:8080 PORT=8000 node server.js
//
// The sidecar calls POST /shopimind/<route> (APP_BASE_URL=http://127.0.0.1:8000/shopimind),
// signed with APP_SECRET. POST /till/sale is this app's own route: a sale at the till, sent
// to the sidecar as the inbound action `sale`.
"use strict";

const http = require("node:http");
const { randomBytes } = require("node:crypto");
const { signedBySidecar, sendInbound } = require("./signature");
const { STORES, ENTITIES, records } = require("./dataset");

const PREFIX = "/shopimind";
const APP_SECRET = process.env.APP_SECRET ?? "";
const inboundSecrets = new Map(); // installation id → the secret its inbound calls are signed with

function testConnection({ api_key: key, api_url: url }) {
  if (typeof key !== "string" || !key || typeof url !== "string" || !url.startsWith("https://")) {
    return { ok: false, error: "an Acme POS api_url (https://) and api_key are required" };
  }
  return { ok: true };
}

function lifecycle(event, call) {
  if (event === "activated" && typeof call.inbound_secret === "string") {
    inboundSecrets.set(call.installation_id, call.inbound_secret); // a repeat sets the same value
  }
  return { ok: true, external_account: { id: "acme-1042", name: call.shop_name ?? null } };
}

function provisioning() {
  const data_sources = Object.entries(STORES).map(([key, city]) => ({
    key,
    label: `Acme POS — ${city}`,
    type: "pos",
    parent: "acme",
  }));
  return { data_sources };
}

function syncPage(entity, { window = {}, limit, cursor, source_key: sourceKey = "" }) {
  if (!Number.isInteger(limit) || limit < 1) return [400, { error: "bad_limit" }];
  const since = Date.parse(window.since);
  const until = Date.parse(window.until);
  if (Number.isNaN(since) || Number.isNaN(until)) return [400, { error: "bad_window" }];
  let offset = 0;
  if (cursor != null) {
    try {
      offset = JSON.parse(Buffer.from(String(cursor), "base64url").toString()).offset;
    } catch {
      offset = undefined;
    }
    if (!Number.isInteger(offset)) return [400, { error: "bad_cursor" }];
  }
  const inWindow = records(entity, String(sourceKey)).filter((record) => {
    const updated = Date.parse(record.updated_at);
    return updated > since && updated <= until;
  });
  const items = inWindow.slice(offset, offset + limit);
  const end = offset + items.length;
  const next =
    end < inWindow.length ? Buffer.from(JSON.stringify({ offset: end })).toString("base64url") : null;
  return [200, { items, next }];
}

async function tillSale(sale) {
  const inboundSecret = inboundSecrets.get(sale.installation_id);
  if (!inboundSecret) return [409, { error: "this shop has not activated the integration" }];
  const { status, answer } = await sendInbound(
    process.env.SIDECAR_URL,
    "sale",
    { amount: sale.amount ?? 0, store: sale.store ?? "", email: sale.email ?? "" },
    {
      installationId: sale.installation_id,
      inboundSecret,
      idempotencyKey: `sale-${sale.ticket ?? randomBytes(8).toString("hex")}`,
    },
  );
  return [status >= 200 && status < 300 ? 200 : 502, { sidecar_status: status, sidecar_answer: answer }];
}

function bridge(route, name, call) {
  const settings = call.settings ?? {};
  switch (route) {
    case "test-connection":
      return [200, testConnection(settings)];
    case "remote-data":
      return [200, { data: name === "stores" ? Object.entries(STORES).map(([value, label]) => ({ value, label })) : [] }];
    case "lifecycle":
      return [200, lifecycle(name, call)];
    case "provisioning":
      return [200, provisioning()];
    case "sources":
      return name === "orders" ? [200, { sources: Object.keys(STORES) }] : [404, { error: "not_found" }];
    case "sync":
      return name in ENTITIES ? syncPage(name, call) : [404, { error: "not_found" }];
    default:
      return [404, { error: "not_found" }];
  }
}

async function handle(req, body) {
  const path = new URL(req.url, "http://app").pathname;
  if (req.method === "GET" && path === `${PREFIX}/health`) return [200, { ok: true }];
  if (req.method === "POST" && path === "/till/sale") return tillSale(JSON.parse(body));
  if (req.method !== "POST" || !path.startsWith(`${PREFIX}/`)) return [404, { error: "not_found" }];
  if (!signedBySidecar(req.headers, body, APP_SECRET)) return [401, { error: "unauthorized" }];
  let call;
  try {
    call = JSON.parse(body);
  } catch {
    return [400, { error: "invalid_json" }];
  }
  const [route, ...rest] = path.slice(PREFIX.length + 1).split("/");
  return bridge(route, decodeURIComponent(rest.join("/")), call ?? {});
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", async () => {
    let status, answer;
    try {
      [status, answer] = await handle(req, Buffer.concat(chunks)); // the raw bytes: verify before JSON.parse
    } catch (error) {
      console.error(error);
      [status, answer] = [500, { error: "internal_error" }];
    }
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(answer));
  });
});

server.listen(Number(process.env.PORT ?? 8000), process.env.HOST ?? "127.0.0.1", () => {
  console.log(`Acme POS sample app listening on http://${process.env.HOST ?? "127.0.0.1"}:${server.address().port}`);
});
