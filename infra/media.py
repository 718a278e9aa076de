"""Media: the bucket that keeps media bytes and the queue of inbound media downloads (with its DLQ).

Bucket: SSE-KMS with the stack's data CMK and an S3 bucket key (one KMS call per bucket-key period, not
per object), public access blocked, TLS-only bucket policy, server access logs to the audit trail's
access-log bucket, objects expiring after `retentionDays.media`. Every object is also encrypted by the
runtime under the contact's own data key before it is put (lambdas/store/media.py), so an erasure's
crypto-shredding makes the object and any backup or noncurrent version of it unreadable.

Versioning is on (the NIST/PCI packs ask for it, and it protects against an accidental overwrite); a
deleted or expired object's noncurrent version is removed one day later, so an erasure or the retention
expiry leaves nothing readable beyond a day, and nothing readable at all once the key is shredded.
No replication: personal data stays in the deployment's region.

Queue: the processor enqueues `{"media": id, ...}` for each inbound media message; the media worker
consumes it. A download that fails is retried (visibility timeout and backoff), and after
`MEDIA_MAX_RECEIVES` receives the job goes to the DLQ, which is alarmed like the others.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import nag
from infra.buckets import private_bucket
from infra.config import WaguardConfig
from infra.queues import DLQ_RETENTION, QUEUE_RETENTION, VISIBILITY_FACTOR, encrypted_queue
from lambdas.shared import constants as c

MEDIA_MAX_RECEIVES = 5
NONCURRENT_DAYS = 1


class Media(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cfg: WaguardConfig,
        key: kms.IKey,
        access_log_bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = private_bucket(
            self,
            "MediaBucket",
            key=key,
            access_logs=(access_log_bucket, "media-bucket/"),
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="MediaRetention",
                    prefix=c.MEDIA_PREFIX,
                    expiration=Duration.days(cfg.retention[c.CLASS_MEDIA]),
                    noncurrent_version_expiration=Duration.days(NONCURRENT_DAYS),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                ),
                s3.LifecycleRule(id="DeleteMarkers", expired_object_delete_marker=True),
            ],
        )
        # What the report's inventory says the bucket holds.
        cfn_bucket = self.bucket.node.default_child
        cfn_bucket.add_metadata(  # type: ignore[union-attr]
            c.DATA_CLASS_METADATA,
            f"media ({c.CLASS_MEDIA} class): what contacts send and each contact's copy of what was sent to "
            "them, sealed chunk by chunk under that contact's data key (an erasure shreds it), and the "
            "business's uploads, sealed under their own key",
        )
        timeout = cfg.function(c.FN_MEDIA_WORKER).timeout_seconds
        self.dlq = encrypted_queue(self, "MediaDlq", key, DLQ_RETENTION)
        # Meta keeps an inbound media id for days: a job older than that could not be fetched anyway.
        self.queue = encrypted_queue(
            self,
            "MediaQueue",
            key,
            QUEUE_RETENTION,
            visibility=Duration.seconds(VISIBILITY_FACTOR * timeout),
            dlq=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=MEDIA_MAX_RECEIVES),
        )
        nag.acknowledge(
            self.bucket,
            "Media is personal data that must stay in the deployment's allowed region; durability comes "
            "from S3 itself and versioning, so the media bucket is not replicated.",
            "NIST.800.53.R5-S3BucketReplicationEnabled",
            "HIPAA.Security-S3BucketReplicationEnabled",
            "PCI.DSS.321-S3BucketReplicationEnabled",
        )
