"""Inbound media through `waguard serve`: the Graph fake serves it only with the Bearer token and fails
once; the media arrives, the bytes match, no plaintext of it is in any S3 object or table, the export lists
it, and an erasure makes it 404."""

from __future__ import annotations

import os
from typing import Any

from tests.scenario.util import unique_phone
from waguard.demo import envelope, wait_for


def _all_objects(aws: Any) -> list[bytes]:
    s3 = aws.client("s3")
    out: list[bytes] = []
    for bucket in s3.list_buckets()["Buckets"]:
        listed = s3.list_object_versions(Bucket=bucket["Name"]).get("Versions", [])
        for obj in listed:
            got = s3.get_object(Bucket=bucket["Name"], Key=obj["Key"], VersionId=obj["VersionId"])
            out.append(got["Body"].read())
    return out


def test_inbound_media_arrives_sealed_is_exported_and_erased(client, stack, graph, aws) -> None:
    phone = unique_phone()
    meta_id = "meta-" + os.urandom(6).hex()
    data = os.urandom(1024 * 1024 + 4321)  # two chunks of the streaming cipher
    previous = graph.expected_token
    graph.expected_token = stack.secrets["WA_ACCESS_TOKEN"]
    try:
        graph.add_media(meta_id, "image/jpeg", data)
        graph.fail_media(1)
        message = {
            "from": phone,
            "id": "wamid." + os.urandom(8).hex(),
            "timestamp": "1767225600",
            "type": "image",
            "image": {"id": meta_id, "mime_type": "image/jpeg", "sha256": "x", "caption": "broken part"},
        }
        value = {"contacts": [{"profile": {"name": "Media User"}, "wa_id": phone}], "messages": [message]}
        assert client.deliver(envelope(value)).status == 200

        def exported_media() -> list[dict[str, Any]] | None:
            reply = client.export(phone)
            media = reply.json().get("media") if reply.status == 200 else None
            return media or None

        (listed,) = wait_for(exported_media, timeout=60)
        assert listed["direction"] == "in" and listed["mime_type"] == "image/jpeg"
        assert listed["size"] == len(data) and listed["id"].startswith("med_") and listed["deletes_at"]
        lookups = [c for c in graph.calls("") if c["method"] == "GET" and meta_id in c["path"]]
        assert len(lookups) == 2 and all(c["authorized"] for c in lookups)  # failed once, then fetched
        assert [c["status"] for c in lookups] == [500, 200]
    finally:
        graph.expected_token = previous

    got = client.request("GET", f"/media/{listed['id']}")
    assert got.status == 200, "\n".join(line for line in stack.lines[-60:] if "error" in line.lower())
    assert got.headers.get("Content-Type", got.headers.get("content-type")) == "image/jpeg"
    assert got.body == data

    objects = _all_objects(aws)
    assert objects  # the media object is there, sealed
    for at in range(0, len(data) - 32, 256 * 1024):
        assert not any(data[at : at + 32] in obj for obj in objects)
    dump = aws.dump()
    assert meta_id not in dump and phone not in dump

    assert client.request("GET", "/media/med_000000000000000000000000").status == 404
    assert client.erase(phone).status == 200
    assert client.request("GET", f"/media/{listed['id']}").status == 404
