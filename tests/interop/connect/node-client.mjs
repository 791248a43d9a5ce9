// Citadel from Node.js with @connectrpc/connect-node, over both its Connect and its gRPC-Web
// transports (HTTP/1.1, as port 8000 serves). Prints one JSON line: {connect: ..., grpcWeb: ...}.
// Usage: node node-client.mjs <http base url>
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { runCalls } from "./calls.mjs";

const [baseUrl] = process.argv.slice(2);
const stamp = Date.now();
const out = {
  connect: await runCalls(createConnectTransport({ baseUrl, httpVersion: "1.1" }), `node-connect-${stamp}`, {}, 30000),
  grpcWeb: await runCalls(createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }), `node-grpcweb-${stamp}`, {}, 30000),
  connectBinary: await runCalls(
    createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: true }),
    `node-connectbin-${stamp}`,
    {},
    30000,
  ),
};
console.log(JSON.stringify(out));
