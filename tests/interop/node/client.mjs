// Citadel from Node.js: create a collection, upsert, search, read an error status, and watch
// a batch job stream to its end. Loads proto/ directly with @grpc/proto-loader.
// Usage: node client.mjs <host:port> <repo root> <well-known-types include dir>
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";
import path from "node:path";

const [target, root, wellKnown] = process.argv.slice(2);
const definition = protoLoader.loadSync(
  ["citadel/vector/v1/vector_service.proto", "citadel/batch/v1/batch_service.proto"],
  {
    includeDirs: [path.join(root, "proto"), path.join(root, "proto", "vendor"), wellKnown],
    keepCase: false,
    longs: String,
    enums: String,
    defaults: false,
    oneofs: true,
  },
);
const loaded = grpc.loadPackageDefinition(definition);
const credentials = grpc.credentials.createInsecure();
const vectors = new loaded.citadel.vector.v1.VectorService(target, credentials);
const batch = new loaded.citadel.batch.v1.BatchService(target, credentials);

const call = (client, method, request) =>
  new Promise((resolve, reject) =>
    client[method](request, { deadline: Date.now() + 30000 }, (err, reply) => (err ? reject(err) : resolve(reply))),
  );

const name = `node-${Date.now()}`;
const out = {};
await call(vectors, "CreateCollection", { collection: { name, dimension: 3, distance: "DISTANCE_COSINE" } });
const upserted = await call(vectors, "UpsertVectors", {
  collection: name,
  vectors: [
    { id: "north", embedding: [1, 0, 0], metadata: { fields: { lang: { stringValue: "js" } } } },
    { id: "east", embedding: [0, 1, 0] },
  ],
});
out.upserted = upserted.upsertedCount;
const found = await call(vectors, "SearchVectors", { collection: name, queryVector: [0.9, 0.1, 0], limit: 1, withMetadata: true });
out.top = found.results[0].id;
out.topLang = found.results[0].metadata.fields.lang.stringValue;
try {
  await call(vectors, "GetCollection", { name: "no-such-collection-from-node" });
  out.error = "none";
} catch (err) {
  out.error = { code: err.code, name: grpc.status[err.code], details: err.details };
}
const submitted = await call(batch, "SubmitBatchJob", {
  collection: name,
  operation: "OPERATION_BULK_UPSERT",
  items: Array.from({ length: 250 }, (_, i) => ({ id: `b${i}`, embedding: [1, i, 0] })),
});
out.events = [];
await new Promise((resolve, reject) => {
  const stream = batch.WatchBatchJob({ id: submitted.job.id }, { deadline: Date.now() + 60000 });
  stream.on("data", (event) => out.events.push({ state: event.job.state, done: Number(event.job.done) }));
  stream.on("error", reject);
  stream.on("end", resolve);
});
console.log(JSON.stringify(out));
