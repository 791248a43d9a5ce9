"""A batch job's errors name collections as its owner does: chunks that fail because their
collection was deleted mid-job say `'films' ...`, never the stored `acme.films`."""

from __future__ import annotations

import time
import uuid

from citadel.batch.v1 import batch_service_pb2 as batch
from citadel.batch.v1 import batch_service_pb2_grpc
from citadel.vector.v1 import resources_pb2
from citadel.vector.v1 import vector_service_pb2 as pb


def test_job_errors_use_the_callers_collection_name(secured):
    admin = secured.metadata("admin")  # tenant acme
    name = f"gone-{uuid.uuid4().hex[:8]}"
    stub = secured.proc.stub()
    collection = resources_pb2.Collection(name=name, dimension=4, distance=resources_pb2.DISTANCE_COSINE)
    stub.CreateCollection(pb.CreateCollectionRequest(collection=collection), metadata=admin, timeout=30)
    jobs = batch_service_pb2_grpc.BatchServiceStub(secured.proc.channel())
    items = [batch.BatchItem(id=f"v{i}", embedding=[1, i % 7, 0, 1]) for i in range(20_000)]
    submitted = jobs.SubmitBatchJob(
        batch.SubmitBatchJobRequest(collection=name, operation=batch.OPERATION_BULK_UPSERT, items=items),
        metadata=admin,
        timeout=60,
    )
    stub.DeleteCollection(pb.DeleteCollectionRequest(name=name), metadata=admin, timeout=30)
    deadline = time.monotonic() + 60
    while True:
        job = jobs.GetBatchJob(batch.GetBatchJobRequest(id=submitted.job.id), metadata=admin, timeout=30).job
        if job.state in (batch.JOB_STATE_SUCCEEDED, batch.JOB_STATE_FAILED) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert job.failed > 0, "every chunk ran before the delete: nothing to check"
    messages = {e.message for e in job.errors}
    assert any(f"'{name}'" in m for m in messages), messages
    assert not any("acme." in m for m in messages), messages
