// Signatures both ways: the sidecar signs its calls to this app with APP_SECRET, and this
// app signs its inbound calls to the sidecar with the installation's inbound secret.
// Both are hex(HMAC-SHA256(secret, "<unix seconds>.<raw body>")).
"use strict";

const { createHmac, timingSafeEqual } = require("node:crypto");

// [readme:node-verify]
// True when the sidecar signed this call: its headers and raw body (a Buffer).
function signedBySidecar(headers, body, appSecret) {
  const ts = headers["x-sidecar-timestamp"] ?? "";
  const signature = Buffer.from(headers["x-sidecar-signature"] ?? "");
  if (!/^[0-9]{1,15}$/.test(ts)) return false;
  const age = Math.floor(Date.now() / 1000) - Number(ts);
  if (age > 300 || age < -60) return false; // 5 minutes old at most, 1 minute ahead
  const expected = Buffer.from(
    createHmac("sha256", appSecret).update(`${ts}.`).update(body).digest("hex"),
  );
  return signature.length === expected.length && timingSafeEqual(signature, expected);
}
// [/readme:node-verify]

// [readme:node-inbound]
// POST one event to the sidecar's /inbound/<action>, signed with the installation's
// inbound secret. Resolves to { status, answer }.
async function sendInbound(sidecarUrl, action, event, { installationId, inboundSecret, idempotencyKey }) {
  const body = JSON.stringify(event);
  const ts = Math.floor(Date.now() / 1000).toString();
  const signature = createHmac("sha256", inboundSecret).update(`${ts}.${body}`).digest("hex");
  const res = await fetch(`${sidecarUrl.replace(/\/$/, "")}/inbound/${encodeURIComponent(action)}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-integration-installation": installationId,
      "x-integration-timestamp": ts,
      "x-integration-signature": signature,
      "x-idempotency-key": idempotencyKey,
    },
    body,
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, answer: await res.json() };
}
// [/readme:node-inbound]

module.exports = { signedBySidecar, sendInbound };
