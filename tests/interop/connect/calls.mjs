// The same calls over any Connect-ES transport (Connect or gRPC-Web, Node or browser): create a
// collection, upsert, search, read a NOT_FOUND, and watch a batch job stream to its end. The
// message types come from proto/ through protoc-gen-es (gen/, made by the test with buf).
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { BatchService, JobState, Operation } from "./gen/citadel/batch/v1/batch_service_pb.js";
import { Distance } from "./gen/citadel/vector/v1/resources_pb.js";
import { VectorService } from "./gen/citadel/vector/v1/vector_service_pb.js";

// `timeoutMs` (sent as Connect-Timeout-Ms / grpc-timeout) is left out in the browser: headless
// Chromium's virtual time runs the client's own timer ahead while it waits on the network.
export async function runCalls(transport, name, headers = {}, timeoutMs = undefined) {
  const vectors = createClient(VectorService, transport);
  const batch = createClient(BatchService, transport);
  const options = { headers, timeoutMs };
  const out = {};
  await vectors.createCollection({ collection: { name, dimension: 3, distance: Distance.COSINE } }, options);
  const upserted = await vectors.upsertVectors(
    {
      collection: name,
      vectors: [
        { id: "north", embedding: [1, 0, 0], metadata: { lang: "js" } },
        { id: "east", embedding: [0, 1, 0] },
      ],
    },
    options,
  );
  out.upserted = upserted.upsertedCount;
  const found = await vectors.searchVectors(
    { collection: name, queryVector: [0.9, 0.1, 0], limit: 1, withMetadata: true },
    options,
  );
  out.top = found.results[0].id;
  out.topLang = found.results[0].metadata.lang;
  try {
    await vectors.getCollection({ name: `no-such-collection-${name}` }, options);
    out.error = "none";
  } catch (err) {
    const e = ConnectError.from(err);
    out.error = { code: Code[e.code], message: e.rawMessage };
  }
  const submitted = await batch.submitBatchJob(
    {
      collection: name,
      operation: Operation.BULK_UPSERT,
      items: Array.from({ length: 250 }, (_, i) => ({ id: `b${i}`, embedding: [1, i, 0] })),
    },
    options,
  );
  out.events = [];
  for await (const event of batch.watchBatchJob({ id: submitted.job.id }, { headers, timeoutMs: timeoutMs && 2 * timeoutMs })) {
    out.events.push({ state: JobState[event.job.state], done: Number(event.job.done) });
  }
  return out;
}
