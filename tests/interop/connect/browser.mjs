// The browser page's script (bundled by esbuild): the same calls with @connectrpc/connect-web
// over Connect and gRPC-Web against the gateway named in window.CITADEL, results written into
// <pre id="out"> as JSON for the test to read from the DOM.
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { runCalls } from "./calls.mjs";

const { baseUrl, key } = window.CITADEL;
const headers = key ? { authorization: `Bearer ${key}` } : {};
const stamp = Date.now();
const show = (value) => {
  document.getElementById("out").textContent = JSON.stringify(value);
};
const out = {};
try {
  out.connect = await runCalls(createConnectTransport({ baseUrl }), `web-connect-${stamp}`, headers);
  out.grpcWeb = await runCalls(createGrpcWebTransport({ baseUrl }), `web-grpcweb-${stamp}`, headers);
} catch (err) {
  out.failed = String(err);
}
show(out);
