"""The one shape of a waguard bucket: private, TLS-only, versioned, owner-enforced, retained.

Every bucket of the stack (the trail's, its access-log bucket, the media bucket) differs only in its key,
where its server access logs go and its lifecycle; the rest is decided once here.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct


def private_bucket(
    scope: Construct,
    construct_id: str,
    *,
    key: kms.IKey | None,
    lifecycle_rules: list[s3.LifecycleRule],
    access_logs: tuple[s3.IBucket, str] | None = None,
) -> s3.Bucket:
    """A bucket under `key` (SSE-KMS with a bucket key), or SSE-S3 when `key` is None (the only encryption
    S3 server access log delivery supports); public access blocked, TLS-only policy, versioned, objects
    owned by the bucket owner, kept when the stack is deleted."""
    encryption = (
        {"encryption": s3.BucketEncryption.KMS, "encryption_key": key, "bucket_key_enabled": True}
        if key is not None
        else {"encryption": s3.BucketEncryption.S3_MANAGED}
    )
    logs = (
        {"server_access_logs_bucket": access_logs[0], "server_access_logs_prefix": access_logs[1]}
        if access_logs
        else {}
    )
    return s3.Bucket(
        scope,
        construct_id,
        **encryption,  # type: ignore[arg-type]
        **logs,  # type: ignore[arg-type]
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        versioned=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        lifecycle_rules=lifecycle_rules,
        removal_policy=RemovalPolicy.RETAIN,
    )
