"""The seven functions of docs/design.md, each with only the environment keys and permissions it needs.

Table access is granted per table at the level the function's code uses (see `NEEDS`):
`read` (Get/Query), `append` (read + PutItem: ledgers), `put` (PutItem only: the audit log, which no
function may rewrite or delete), `write` (read + Put/Update), `delete` (write + Delete/BatchWrite).
Only contacts-api (erasure) may delete from the keys, consent and contacts tables, so only it can
crypto-shred a contact.

- webhook: no table; sends to the inbound queue.
- secrets (constants.SECRETS), each function only those it reads: webhook the webhook secret (app secret,
  verify token); sender, media-worker and messages-api (read receipts) the Graph secret (access token);
  every function that derives identities (all but webhook and media-worker) the pseudonymization key.
- processor: contacts, messages, keys, privacy `write`; consent `append`; audit `put` (requests opened
  over WhatsApp); consumes inbound, sends to send.
- messages-api: contacts, consent `read`; messages `delete` (rollback only); keys `write`;
  idempotency `delete`; audit `put`; sends to send; PutItem on the contacts table only for the partitions
  of uploads (`UPLOADS`, `MEDIAREF#…`: condition `dynamodb:LeadingKeys`).
- contacts-api: contacts, messages, consent, keys, idempotency, privacy `delete`; audit `put`; every 15
  minutes an EventBridge schedule runs its overdue check of data-subject requests.
- sender: messages, keys `write`; contacts `append` (a contact's copy of an upload sent to them); consent
  `append`; consumes send (visibility) and re-queues to it; reads and puts media objects.
- media-worker: contacts, keys `write`; consumes media; puts (and cleans up) objects under `media/`.
- processor also sends to media (one job per inbound media message); messages-api reads and puts media
  objects (`GET /media/{id}`, `POST /media`); the sender reads them and puts contacts' copies;
  contacts-api deletes them (erasure).
- processor, contacts-api and sender put business events on the stack's bus (`events:PutEvents` on it).
- campaigns: messages `delete` (the campaign's own items), contacts, consent `read`, keys `write`, templates
  `write`; sends a campaign's first step to send; every minute starts the scheduled campaigns that are due.
  The sender runs the steps (preparation pages through consent's GSI by_grant) and sends the messages.
- auditor: audit `append` (keeps each run, reads the last); puts `audit.finding` events on the bus; no
  secret; read-only Describe/Get/List on the stack's resources (infra/audits.py); every
  `auditScheduleHours` and after each deploy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from aws_cdk import Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import WaguardConfig
from infra.function_factory import WaguardFunction
from infra.monitoring import PRIVACY_CHECK_MINUTES
from lambdas.shared import constants as c

TABLE_READ = [
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",  # its own action in IAM: a batched read of items the function may GetItem
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
]
TABLE_ACCESS: dict[str, list[str]] = {
    "read": TABLE_READ,
    "append": [*TABLE_READ, "dynamodb:PutItem"],
    "put": ["dynamodb:PutItem"],
    "write": [*TABLE_READ, "dynamodb:PutItem", "dynamodb:UpdateItem"],
    "delete": [
        *TABLE_READ,
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
    ],
}
QUEUE_SEND = ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
QUEUE_CONSUME = [
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
]
# DynamoDB, SQS and Secrets Manager use the data key on the caller's behalf (kms:ViaService).
KMS_FOR_DYNAMODB = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
KMS_FOR_SQS_SEND = ["kms:GenerateDataKey", "kms:Decrypt"]
KMS_FOR_SQS_CONSUME = ["kms:Decrypt"]
KMS_FOR_SECRET = ["kms:Decrypt"]
# The current version of a secret only: a value replaced (the Meta fields moved out of the pseudonymization
# secret on the split, a rotated token) stays in AWSPREVIOUS, which no function may read, by stage or id.
CURRENT_VERSION_ONLY: dict[str, dict[str, object]] = {
    "StringEqualsIfExists": {"secretsmanager:VersionStage": "AWSCURRENT"},
    "Null": {"secretsmanager:VersionId": "true"},
}
# store/crypto.py: branch keys come from GenerateDataKey/Decrypt with EncryptionContext waguard=branch.
KMS_FOR_FIELD_ENCRYPTION = ["kms:GenerateDataKey", "kms:Decrypt"]
# Media objects under `media/` (SSE-KMS with a bucket key: S3 calls KMS on the caller's behalf).
BUCKET_ACCESS: dict[str, list[str]] = {
    "read": ["s3:GetObject"],
    "put": ["s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"],
    "readwrite": ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
    "copy": ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"],
    "delete": ["s3:DeleteObject"],
}
KMS_FOR_S3 = ["kms:GenerateDataKey", "kms:Decrypt"]


@dataclass(frozen=True)
class Needs:
    tables: dict[str, str] = field(default_factory=dict)  # logical table -> TABLE_ACCESS level
    send_to: tuple[str, ...] = ()  # queue names: "inbound", "send"
    consume: str | None = None
    publishes: bool = False  # puts business events on the stack's bus
    media: str | None = None  # BUCKET_ACCESS level on the media bucket's objects
    # PutItem on these partitions of the contacts table only (dynamodb:LeadingKeys), beyond `tables`
    puts_partitions: tuple[str, ...] = ()
    secrets: tuple[str, ...] = (c.SECRET_PSEUDONYM,)  # the secrets it reads (constants.SECRETS)
    # Invoked every this many minutes by an EventBridge schedule (a rule on the default bus); `waguard
    # serve` reads the rule back from the template and runs it on the same rate.
    schedule_minutes: int | Callable[[WaguardConfig], int] | None = None
    # The self-audit (docs/design.md "Audits"): its stack's name in the environment, read-only describe
    # permissions on the stack's resources (infra/audits.py), invoked every `auditScheduleHours`.
    audits: bool = False
    description: str = ""


NEEDS: dict[str, Needs] = {
    c.FN_WEBHOOK: Needs(
        send_to=("inbound",),
        secrets=(c.SECRET_WEBHOOK,),
        description="Meta webhook: handshake, HMAC check, enqueue the verified body",
    ),
    c.FN_PROCESSOR: Needs(
        tables={
            c.TABLE_CONTACTS: "write",
            c.TABLE_MESSAGES: "write",
            c.TABLE_CONSENT: "append",
            c.TABLE_KEYS: "write",
            c.TABLE_TEMPLATES: "write",  # template webhooks update the registry at once
            c.TABLE_PRIVACY: "write",  # requests over WhatsApp (MY DATA, DELETE MY DATA)
            c.TABLE_AUDIT: "put",  # ... recorded in the audit log when opened
        },
        send_to=("send", "media"),
        consume="inbound",
        publishes=True,
        description="Inbound queue consumer: messages, statuses, keywords, consent",
    ),
    c.FN_MESSAGES_API: Needs(
        tables={
            c.TABLE_CONTACTS: "read",
            c.TABLE_MESSAGES: "delete",  # DeleteItem only to roll back a send that could not be queued
            c.TABLE_CONSENT: "read",
            c.TABLE_KEYS: "write",
            c.TABLE_IDEMPOTENCY: "delete",  # Powertools deletes the record of a failed request
            c.TABLE_AUDIT: "put",
            c.TABLE_TEMPLATES: "write",  # the gate reads entries; a miss syncs the registry (once a minute)
        },
        send_to=("send",),
        publishes=True,  # template.changed when a miss syncs the registry
        media="readwrite",
        puts_partitions=(c.MEDIA_UPLOADS_PK, "MEDIAREF#*"),  # POST /media records the upload
        secrets=(c.SECRET_PSEUDONYM, c.SECRET_GRAPH),  # POST /messages/{id}/read calls Meta
        description="POST /messages, GET /messages/{id}, media: consent and window gates, enqueue sends",
    ),
    c.FN_CONTACTS_API: Needs(
        tables={
            **{t: "delete" for t in c.TABLES if t not in (c.TABLE_AUDIT, c.TABLE_TEMPLATES)},
            c.TABLE_AUDIT: "put",  # erasure receipts and audit records, never rewritten
        },
        publishes=True,
        media="delete",
        schedule_minutes=PRIVACY_CHECK_MINUTES,  # overdue data-subject requests: event and metric
        description="Consent, export, erasure, conversation, restriction and privacy-request routes",
    ),
    c.FN_SENDER: Needs(
        tables={
            c.TABLE_MESSAGES: "write",
            c.TABLE_CONTACTS: "append",  # the contact's own copy of an upload sent to them
            c.TABLE_CONSENT: "append",  # error 131050 records a marketing opt-out
            c.TABLE_KEYS: "write",
            c.TABLE_TEMPLATES: "read",  # the template still APPROVED, its category's consent
        },
        send_to=("send",),  # re-queues deferred records; a campaign's messages and next step
        consume="send",
        publishes=True,
        media="copy",  # reads uploads, puts (and cleans up) the contact's copy
        secrets=(c.SECRET_PSEUDONYM, c.SECRET_GRAPH),
        description="Send queue consumer: Graph API calls with backoff and rate budget",
    ),
    c.FN_MEDIA_WORKER: Needs(
        tables={c.TABLE_CONTACTS: "write", c.TABLE_KEYS: "write"},
        consume="media",
        media="put",
        secrets=(c.SECRET_GRAPH,),  # jobs name the contact by pseudonym already
        description="Media queue consumer: fetch inbound media from Meta, encrypt it, keep it in S3",
    ),
    c.FN_TEMPLATES: Needs(
        tables={c.TABLE_TEMPLATES: "write", c.TABLE_AUDIT: "put"},
        publishes=True,
        secrets=(c.SECRET_GRAPH,),  # reads Meta's template list; never a contact
        schedule_minutes=lambda cfg: cfg.template_sync_minutes,
        description="Template registry: GET/POST /templates, sync from Meta on a schedule",
    ),
    c.FN_AUDITOR: Needs(
        tables={c.TABLE_AUDIT: "append"},  # keeps each run, reads the last one
        publishes=True,  # audit.finding events
        secrets=(),
        audits=True,
        description="Self-audit: the deployed resources checked against the stack's template",
    ),
    c.FN_CAMPAIGNS: Needs(
        tables={
            c.TABLE_MESSAGES: "delete",  # the campaign's items (BatchWriteItem: its audience entries)
            c.TABLE_CONTACTS: "read",
            c.TABLE_CONSENT: "read",
            c.TABLE_KEYS: "write",
            c.TABLE_TEMPLATES: "write",  # the gate reads entries; a miss syncs the registry (once a minute)
            c.TABLE_AUDIT: "put",
        },
        send_to=("send",),  # a campaign's first step goes on the send queue (the sender runs it)
        publishes=True,  # campaign.started
        secrets=(c.SECRET_PSEUDONYM, c.SECRET_GRAPH),  # references of the audience; a registry miss syncs
        schedule_minutes=1,  # starts the scheduled campaigns whose send_at has come
        description="Campaign routes and the schedule that starts due campaigns",
    ),
}


class Functions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cfg: WaguardConfig,
        logs_key: kms.IKey,
        data_key: kms.IKey,
        tables: dict[str, dynamodb.Table],
        queues: dict[str, sqs.Queue],
        secrets: dict[str, secretsmanager.ISecret],
        bus: events.IEventBus,
        media_bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        region = Stack.of(self).region
        given = _Given(data_key, tables, queues, secrets, bus, media_bucket)
        self.functions: dict[str, WaguardFunction] = {}
        for name, needs in NEEDS.items():
            env = _environment(needs, given)
            fn = WaguardFunction(
                self,
                "".join(p.title() for p in name.split("-")),
                name=name,
                cfg=cfg,
                logs_key=logs_key,
                environment=env,
                description=f"waguard {name}: {needs.description}",
            )
            if needs.secrets:
                fn.allow(
                    "ReadSecrets",
                    ["secretsmanager:GetSecretValue"],
                    [secrets[s].secret_arn for s in needs.secrets],
                    conditions=CURRENT_VERSION_ONLY,
                )
                fn.allow(
                    "DecryptSecret",
                    KMS_FOR_SECRET,
                    [data_key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
                )
            for level, actions in TABLE_ACCESS.items():
                table_resources: list[str] = []
                for logical in (t for t, lvl in needs.tables.items() if lvl == level):
                    table_resources.append(tables[logical].table_arn)
                    table_resources += [
                        f"{tables[logical].table_arn}/index/{index}"
                        for index, _attribute in c.TABLE_SPEC[logical].indexes
                    ]
                if table_resources:
                    fn.allow(f"Tables{level.title()}", actions, table_resources)
            if needs.puts_partitions:
                fn.allow(
                    "PutOwnPartitions",
                    ["dynamodb:PutItem"],
                    [tables[c.TABLE_CONTACTS].table_arn],
                    conditions={
                        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(needs.puts_partitions)}
                    },
                )
            if needs.tables:
                fn.allow(
                    "DataKeyForTables",
                    KMS_FOR_DYNAMODB,
                    [data_key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"dynamodb.{region}.amazonaws.com"}},
                )
            if c.TABLE_KEYS in needs.tables:
                fn.allow(
                    "FieldEncryptionBranchKeys",
                    KMS_FOR_FIELD_ENCRYPTION,
                    [data_key.key_arn],
                    conditions={"StringEquals": {"kms:EncryptionContext:waguard": "branch"}},
                )
            if needs.send_to:
                fn.allow("SendToQueues", QUEUE_SEND, [queues[q].queue_arn for q in needs.send_to])
            if needs.consume:
                fn.allow("ConsumeQueue", QUEUE_CONSUME, [queues[needs.consume].queue_arn])
            if needs.send_to or needs.consume:
                fn.allow(
                    "DataKeyForQueues",
                    sorted(set(KMS_FOR_SQS_SEND if needs.send_to else KMS_FOR_SQS_CONSUME)),
                    [data_key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"sqs.{region}.amazonaws.com"}},
                )
            if needs.publishes:
                fn.allow("PublishEvents", ["events:PutEvents"], [bus.event_bus_arn])
            if needs.media:
                _allow_media(fn, needs.media, media_bucket, data_key, region)
            every = needs.schedule_minutes
            minutes = cfg.audit_schedule_hours * 60 if needs.audits else every
            if minutes:
                _build_schedule(fn, minutes if isinstance(minutes, int) else minutes(cfg))
            self.functions[name] = fn

    @property
    def publishers(self) -> list[WaguardFunction]:
        return [fn for name, fn in self.functions.items() if NEEDS[name].publishes]

    def __getitem__(self, name: str) -> WaguardFunction:
        return self.functions[name]

    def finish(self) -> None:
        for fn in self.functions.values():
            fn.finish()


@dataclass(frozen=True)
class _Given:
    """The stack's resources a function's environment may name."""

    data_key: kms.IKey
    tables: dict[str, dynamodb.Table]
    queues: dict[str, sqs.Queue]
    secrets: dict[str, secretsmanager.ISecret]
    bus: events.IEventBus
    media_bucket: s3.IBucket


def _environment(needs: Needs, of: _Given) -> dict[str, str]:
    """The function's environment: the names and ARNs of exactly what its needs name (no value of a
    secret: only the ARNs of the secrets it is granted)."""
    env: dict[str, str] = {c.ENV_SECRET_ID[s]: of.secrets[s].secret_arn for s in needs.secrets}
    for table in needs.tables:
        env[c.ENV_TABLE[table]] = of.tables[table].table_name
    for queue in needs.send_to:
        env[_queue_env(queue)] = of.queues[queue].queue_url
    if c.TABLE_KEYS in needs.tables:
        env[c.ENV_DATA_KEY_ARN] = of.data_key.key_arn
    if needs.publishes:
        env[c.ENV_EVENT_BUS_NAME] = of.bus.event_bus_name
    if needs.media:
        env[c.ENV_MEDIA_BUCKET] = of.media_bucket.bucket_name
    if needs.audits:
        env[c.ENV_STACK_NAME] = Stack.of(of.bus).stack_name
    return env


def _queue_env(queue: str) -> str:
    return {
        "inbound": c.ENV_INBOUND_QUEUE_URL,
        "send": c.ENV_SEND_QUEUE_URL,
        "media": c.ENV_MEDIA_QUEUE_URL,
    }[queue]


def _build_schedule(fn: WaguardFunction, minutes: int) -> events.Rule:
    """The function's EventBridge schedule: a rule on the default bus invoking it every `minutes`."""
    from aws_cdk import Duration
    from aws_cdk import aws_events_targets as targets

    return events.Rule(
        fn,
        "Schedule",
        description=f"waguard {fn.node.id}: every {minutes} minutes",
        schedule=events.Schedule.rate(Duration.minutes(minutes)),
        targets=[targets.LambdaFunction(fn.function, retry_attempts=2)],
    )


def _allow_media(
    fn: WaguardFunction, level: str, bucket: s3.IBucket, data_key: kms.IKey, region: str
) -> None:
    fn.allow(
        "MediaObjects",
        BUCKET_ACCESS[level],
        [bucket.arn_for_objects(f"{c.MEDIA_PREFIX}*")],
        wildcard_reason=(
            "Media object keys are random ids under the media/ prefix, created at runtime, so the "
            "statement names that prefix of the one media bucket."
        ),
    )
    fn.allow(
        "DataKeyForMedia",
        KMS_FOR_S3,
        [data_key.key_arn],
        conditions={"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
    )
