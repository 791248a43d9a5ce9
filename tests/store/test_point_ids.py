"""Point ids are uuid5 of the user's id: computed by hand for speed, they must stay exactly
uuid.uuid5's, or every point already stored would be unreachable by its id."""

from __future__ import annotations

import uuid

from citadel.server.store.point_ids import _NAMESPACE, point_id


def test_point_ids_are_uuid5_of_the_user_id():
    ids = [
        "",
        "a",
        "v0",
        "dune",
        "x" * 256,
        "café",
        "日本語の文書",
        "emoji 🦀",
        "tab\tand\nnewline",
        "../etc",
    ]
    ids += [f"doc-{i}" for i in range(2000)]
    for user_id in ids:
        assert point_id(user_id) == str(uuid.uuid5(_NAMESPACE, user_id)), user_id
    # A fixed value, so a change to the namespace itself is caught too.
    assert point_id("dune") == "6014595e-db8f-5e17-8d81-890f563f6113"
