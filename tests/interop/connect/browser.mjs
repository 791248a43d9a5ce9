// The browser page's script (bundled by esbuild): the same calls with @connectrpc/connect-web
// over Connect and gRPC-Web against the gateway named in window.CITADEL, results written into
// <pre id="out"> and POSTed as JSON to the page's own origin, where the test reads them.
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { runCalls } from "./calls.mjs";

const { baseUrl, key } = window.CITADEL;
const headers = key ? { authorization: `Bearer ${key}` } : {};
const stamp = Date.now();
const show = (value) => {
  document.getElementById("out").textContent = JSON.stringify(value);
  return fetch(`${location.origin}/result`, { method: "POST", body: JSON.stringify(value) });
};
const out = {};
try {
  out.connect = await runCalls(createConnectTransport({ baseUrl }), `web-connect-${stamp}`, headers);
  out.grpcWeb = await runCalls(createGrpcWebTransport({ baseUrl }), `web-grpcweb-${stamp}`, headers);
} catch (err) {
  out.failed = String(err);
}
await show(out);
