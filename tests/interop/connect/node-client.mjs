// Citadel from Node.js with @connectrpc/connect-node, over both its Connect and its gRPC-Web
// transports (HTTP/1.1, as port 8000 serves). Prints one JSON line: {connect: ..., grpcWeb: ...}.
// Usage: node node-client.mjs <http base url> [gzip]
// With `gzip` every request is sent gzip-compressed (no size threshold), and the encodings the
// gateway's replies declared are reported under `replyEncodings`.
import { compressionGzip, createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { runCalls } from "./calls.mjs";

const [baseUrl, mode] = process.argv.slice(2);
const stamp = Date.now();
const replyEncodings = new Set();
const recordEncodings = (next) => async (req) => {
  const res = await next(req);
  for (const name of ["content-encoding", "connect-content-encoding", "grpc-encoding"]) {
    const value = res.header.get(name);
    if (value) replyEncodings.add(`${name}: ${value}`);
  }
  return res;
};
const extra =
  mode === "gzip"
    ? { sendCompression: compressionGzip, compressMinBytes: 0, acceptCompression: [compressionGzip], interceptors: [recordEncodings] }
    : {};
const transport = (make, options) => make({ baseUrl, httpVersion: "1.1", ...options, ...extra });
const out = {
  connect: await runCalls(transport(createConnectTransport, {}), `node-connect-${mode ?? "plain"}-${stamp}`, {}, 30000),
  grpcWeb: await runCalls(transport(createGrpcWebTransport, {}), `node-grpcweb-${mode ?? "plain"}-${stamp}`, {}, 30000),
  connectBinary: await runCalls(
    transport(createConnectTransport, { useBinaryFormat: true }),
    `node-connectbin-${mode ?? "plain"}-${stamp}`,
    {},
    30000,
  ),
};
out.replyEncodings = [...replyEncodings].sort();
console.log(JSON.stringify(out));
