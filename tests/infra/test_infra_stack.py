"""The synthesized template: data protection, least privilege and wiring the local runtime relies on."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk.assertions import Match

from lambdas.shared import constants as c
from tests.infra.support import Synth

pytestmark = pytest.mark.xdist_group("infra")


def ref(value: Any) -> str:
    """The logical id a `Ref` / `Fn::GetAtt` points to."""
    if isinstance(value, dict) and "Ref" in value:
        return value["Ref"]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return value["Fn::GetAtt"][0]
    raise AssertionError(f"not a reference: {value!r}")


def refs_in(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            found.add(value["Fn::GetAtt"][0])
        for v in value.values():
            found |= refs_in(v)
    elif isinstance(value, list):
        for v in value:
            found |= refs_in(v)
    return found


def statements(resource: dict[str, Any]) -> list[dict[str, Any]]:
    return resource["Properties"]["PolicyDocument"]["Statement"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ---- keys ------------------------------------------------------------------------------------------


def test_three_customer_managed_keys_with_rotation(synth: Synth) -> None:
    synth.template.resource_count_is("AWS::KMS::Key", 3)
    synth.template.all_resources_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    for key in synth.of_type("AWS::KMS::Key").values():
        assert key["DeletionPolicy"] == "Retain"


def test_logs_key_is_usable_by_logs_only_for_this_stacks_log_groups(synth: Synth) -> None:
    (logs_key,) = [
        k for k in synth.of_type("AWS::KMS::Key").values() if "Logs" in k["Properties"]["Description"]
    ]
    service = [s for s in logs_key["Properties"]["KeyPolicy"]["Statement"] if "Service" in s["Principal"]]
    assert len(service) == 1
    arns = json.dumps(service[0]["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"])
    assert ":log-group:/waguard/*" in arns and ":log-group:aws-waf-logs-waguard*" in arns
    assert "kms:*" not in as_list(service[0]["Action"])
    # every log group of the stack is covered by that condition
    for group in synth.of_type("AWS::Logs::LogGroup").values():
        name = group["Properties"]["LogGroupName"]
        assert name.startswith("/waguard/") or name.startswith("aws-waf-logs-waguard"), name


def test_trail_key_policy_has_the_cloudtrail_conditions(synth: Synth) -> None:
    (trail_key,) = [
        k for k in synth.of_type("AWS::KMS::Key").values() if "CloudTrail" in k["Properties"]["Description"]
    ]
    policy = {s.get("Sid"): s for s in trail_key["Properties"]["KeyPolicy"]["Statement"]}
    encrypt = policy["AllowCloudTrailToEncryptLogs"]
    assert encrypt["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    assert encrypt["Action"] == "kms:GenerateDataKey"
    assert "aws:SourceArn" in encrypt["Condition"]["StringEquals"]
    assert "kms:EncryptionContext:aws:cloudtrail:arn" in encrypt["Condition"]["StringLike"]
    decrypt = policy["AllowPrincipalsInTheAccountToDecryptLogFiles"]
    assert "kms:CallerAccount" in decrypt["Condition"]["StringEquals"]


# ---- data ------------------------------------------------------------------------------------------


def test_every_declared_table_encrypted_with_the_data_key_ttl_and_protected(synth: Synth) -> None:
    synth.template.resource_count_is("AWS::DynamoDB::Table", len(c.TABLE_SPECS))
    tables = synth.of_type("AWS::DynamoDB::Table")
    data_key = ref(synth.env("processor")[c.ENV_DATA_KEY_ARN])
    for logical_id, table in tables.items():
        props = table["Properties"]
        assert props["SSESpecification"]["SSEEnabled"] is True, logical_id
        assert props["SSESpecification"]["SSEType"] == "KMS", logical_id
        assert ref(props["SSESpecification"]["KMSMasterKeyId"]) == data_key, logical_id
        assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
        assert props["DeletionProtectionEnabled"] is True
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["KeySchema"] == [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ]
        assert table["DeletionPolicy"] == "Retain"


def test_pitr_on_every_table_but_keys(synth: Synth) -> None:
    ids = synth.table_ids()
    assert set(ids) == set(c.TABLES)
    for table, logical_id in ids.items():
        spec = synth.resources[logical_id]["Properties"].get("PointInTimeRecoverySpecification", {})
        enabled = spec.get("PointInTimeRecoveryEnabled", False)
        assert enabled is (table != c.TABLE_KEYS), table


def test_messages_table_gsis(synth: Synth) -> None:
    props = synth.resources[synth.table_ids()[c.TABLE_MESSAGES]]["Properties"]
    gsis = {g["IndexName"]: g for g in props["GlobalSecondaryIndexes"]}
    assert set(gsis) == {c.GSI_BY_MSG_ID, c.GSI_BY_WAMID}
    assert gsis[c.GSI_BY_MSG_ID]["KeySchema"] == [{"AttributeName": "msg_id", "KeyType": "HASH"}]
    assert gsis[c.GSI_BY_WAMID]["KeySchema"] == [{"AttributeName": "wamid_h", "KeyType": "HASH"}]
    assert all(g["Projection"] == {"ProjectionType": "ALL"} for g in gsis.values())
    consent = synth.resources[synth.table_ids()[c.TABLE_CONSENT]]["Properties"]["GlobalSecondaryIndexes"]
    assert [(g["IndexName"], g["KeySchema"]) for g in consent] == [  # a campaign's consented audience
        (c.GSI_BY_GRANT, [{"AttributeName": c.ATTR_GRANTED_PURPOSE, "KeyType": "HASH"}])
    ]
    for other in set(c.TABLES) - {c.TABLE_MESSAGES, c.TABLE_CONSENT}:
        assert "GlobalSecondaryIndexes" not in synth.resources[synth.table_ids()[other]]["Properties"]


def test_backup_plan_covers_the_data_tables_but_not_keys(synth: Synth) -> None:
    (selection,) = synth.of_type("AWS::Backup::BackupSelection").values()
    covered = refs_in(selection["Properties"]["BackupSelection"]["Resources"])
    ids = synth.table_ids()
    assert covered == {ids[t] for t in c.TABLES if t != c.TABLE_KEYS}
    assert "IamRoleArn" in selection["Properties"]["BackupSelection"]
    (vault,) = synth.of_type("AWS::Backup::BackupVault").values()
    assert "EncryptionKeyArn" in vault["Properties"]
    (plan,) = synth.of_type("AWS::Backup::BackupPlan").values()
    (rule,) = plan["Properties"]["BackupPlan"]["BackupPlanRule"]
    assert rule["Lifecycle"]["DeleteAfterDays"] == synth.cfg.backup_retention_days


# ---- queues ----------------------------------------------------------------------------------------


def test_queues_are_kms_encrypted_with_dlqs_and_ssl_only(synth: Synth) -> None:
    queues = synth.of_type("AWS::SQS::Queue")
    assert len(queues) == 7  # inbound, send and media with their DLQs; the events DLQ
    data_key = ref(synth.env("processor")[c.ENV_DATA_KEY_ARN])
    for logical_id, queue in queues.items():
        assert ref(queue["Properties"]["KmsMasterKeyId"]) == data_key, logical_id
    redrive = {
        lid: q["Properties"]["RedrivePolicy"]
        for lid, q in queues.items()
        if "RedrivePolicy" in q["Properties"]
    }
    assert len(redrive) == 3
    dlqs = {ref(r["deadLetterTargetArn"]) for r in redrive.values()}
    events_dlq = synth.stack.resolve(synth.stack.events.dlq.node.default_child.logical_id)  # type: ignore[union-attr]
    assert dlqs | {events_dlq} == set(queues) - set(redrive)
    media = ref(synth.env("processor")[c.ENV_MEDIA_QUEUE_URL])
    assert redrive[media]["maxReceiveCount"] == 5
    inbound = ref(synth.env("webhook")[c.ENV_INBOUND_QUEUE_URL])
    send = ref(synth.env("messages-api")[c.ENV_SEND_QUEUE_URL])
    assert redrive[inbound]["maxReceiveCount"] == 5
    assert redrive[send]["maxReceiveCount"] == synth.cfg.max_send_attempts
    policies = synth.of_type("AWS::SQS::QueuePolicy")
    protected = set()
    for policy in policies.values():
        for statement in statements(policy):
            if statement["Effect"] == "Deny" and statement.get("Condition") == {
                "Bool": {"aws:SecureTransport": "false"}
            }:
                protected |= refs_in(policy["Properties"]["Queues"])
    assert protected == set(queues)


def test_event_source_mappings_and_visibility_timeouts(synth: Synth) -> None:
    mappings = synth.of_type("AWS::Lambda::EventSourceMapping")
    fns = synth.function_ids()
    inbound = ref(synth.env("webhook")[c.ENV_INBOUND_QUEUE_URL])
    send = ref(synth.env("messages-api")[c.ENV_SEND_QUEUE_URL])
    wiring = {
        ref(m["Properties"]["EventSourceArn"]): ref(m["Properties"]["FunctionName"])
        for m in mappings.values()
    }
    media = ref(synth.env("processor")[c.ENV_MEDIA_QUEUE_URL])
    assert wiring == {inbound: fns["processor"], send: fns["sender"], media: fns["media-worker"]}
    for mapping in mappings.values():
        props = mapping["Properties"]
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert props["MaximumBatchingWindowInSeconds"] <= 5
        queue = synth.resources[ref(props["EventSourceArn"])]["Properties"]
        function = synth.resources[ref(props["FunctionName"])]["Properties"]
        assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]
    by_queue = {ref(m["Properties"]["EventSourceArn"]): m["Properties"] for m in mappings.values()}
    assert by_queue[send]["BatchSize"] == synth.cfg.sender_batch_size
    assert by_queue[send]["ScalingConfig"]["MaximumConcurrency"] == synth.cfg.sender_max_concurrency


# ---- secret ----------------------------------------------------------------------------------------


# The pseudonymization secret as first deployed: CloudFormation regenerates a secret whose
# GenerateSecretString changes, and a new contact_key would orphan every stored item.
PSEUDONYM_SECRET_ID = "SecretA29EB826"
PSEUDONYM_GENERATOR = {
    "ExcludePunctuation": True,
    "GenerateStringKey": c.SECRET_CONTACT_KEY,
    "PasswordLength": 64,
    "SecretStringTemplate": json.dumps(
        {
            c.SECRET_APP_SECRET: "REPLACE_ME",
            c.SECRET_VERIFY_TOKEN: "REPLACE_ME",
            c.SECRET_ACCESS_TOKEN: "REPLACE_ME",
        }
    ),
}
# function -> the secrets it may read (issue 21: each only what it needs).
SECRETS_OF = {
    "webhook": {c.SECRET_WEBHOOK},
    "processor": {c.SECRET_PSEUDONYM},
    "messages-api": {c.SECRET_PSEUDONYM, c.SECRET_GRAPH},
    "contacts-api": {c.SECRET_PSEUDONYM},
    "sender": {c.SECRET_PSEUDONYM, c.SECRET_GRAPH},
    "media-worker": {c.SECRET_GRAPH},
    "templates": {c.SECRET_GRAPH},  # reads Meta's template list, never a contact
    "auditor": set(),
    "campaigns": {c.SECRET_PSEUDONYM, c.SECRET_GRAPH},  # audience references; a registry miss syncs
}


def _secret_ids(synth: Synth) -> dict[str, str]:
    """constants.SECRETS name -> logical id, from the secrets' own metadata."""
    out = {}
    for logical_id, secret in synth.of_type("AWS::SecretsManager::Secret").items():
        declared = secret.get("Metadata", {}).get(c.SECRET_FIELDS_METADATA)
        if declared:
            assert declared["fields"] == list(c.SECRETS[declared["secret"]])
            out[declared["secret"]] = logical_id
    return out


def test_three_secrets_split_by_need_under_the_data_key(synth: Synth) -> None:
    ids = _secret_ids(synth)
    assert set(ids) == set(c.SECRETS)
    assert ids[c.SECRET_PSEUDONYM] == PSEUDONYM_SECRET_ID  # never replaced on an upgrade
    pseudonym = synth.resources[PSEUDONYM_SECRET_ID]["Properties"]
    assert "SecretString" not in pseudonym
    assert pseudonym["GenerateSecretString"] == PSEUDONYM_GENERATOR
    for name in (c.SECRET_WEBHOOK, c.SECRET_GRAPH):
        props = synth.resources[ids[name]]["Properties"]
        assert json.loads(props["SecretString"]) == dict.fromkeys(c.SECRETS[name], "REPLACE_ME")
    for secret_id in ids.values():
        props = synth.resources[secret_id]["Properties"]
        assert ref(props["KmsKeyId"]) == ref(synth.env("processor")[c.ENV_DATA_KEY_ARN])
        assert synth.resources[secret_id]["DeletionPolicy"] == "Retain"


def test_each_function_holds_and_may_read_only_its_own_secrets(synth: Synth) -> None:
    ids = _secret_ids(synth)
    assert set(SECRETS_OF) == set(synth.function_ids())
    for name, wanted in SECRETS_OF.items():
        env = synth.env(name)
        held = {secret for secret, key in c.ENV_SECRET_ID.items() if key in env}
        assert held == wanted, name
        for secret in held:
            assert env[c.ENV_SECRET_ID[secret]] == {"Ref": ids[secret]}, name
        readable: set[str] = set()
        for statement in _function_statements(synth, name).values():
            if "secretsmanager:GetSecretValue" in as_list(statement["Action"]):
                assert statement["Effect"] == "Allow"
                assert statement["Condition"] == {  # the current value only, never AWSPREVIOUS
                    "StringEqualsIfExists": {"secretsmanager:VersionStage": "AWSCURRENT"},
                    "Null": {"secretsmanager:VersionId": "true"},
                }
                readable |= refs_in(statement["Resource"])
        assert readable == {ids[s] for s in wanted}, name


def test_the_public_webhook_cannot_read_the_access_token_and_only_it_can_verify_deliveries(
    synth: Synth,
) -> None:
    ids = _secret_ids(synth)
    readers: dict[str, set[str]] = {secret: set() for secret in ids}
    for name in synth.function_ids():
        for statement in _function_statements(synth, name).values():
            if "secretsmanager:GetSecretValue" in as_list(statement["Action"]):
                for secret, logical_id in ids.items():
                    if logical_id in refs_in(statement["Resource"]):
                        readers[secret].add(name)
    assert readers[c.SECRET_WEBHOOK] == {"webhook"}  # no other function can forge a signed delivery
    assert "webhook" not in readers[c.SECRET_GRAPH]
    assert "webhook" not in readers[c.SECRET_PSEUDONYM]


def test_no_secret_value_anywhere_in_the_template(synth: Synth) -> None:
    # The placeholders occur only inside the secrets: the Meta values' strings and the legacy generator.
    placeholders = 0
    for secret in synth.of_type("AWS::SecretsManager::Secret").values():
        props = secret["Properties"]
        text = props.get("SecretString") or props["GenerateSecretString"]["SecretStringTemplate"]
        assert set(json.loads(text).values()) == {"REPLACE_ME"}  # nothing but placeholders
        placeholders += text.count("REPLACE_ME")
    assert placeholders == 6
    assert json.dumps(synth.data).count("REPLACE_ME") == placeholders
    lowered = synth.text.lower()
    for forbidden in ("wa_app_secret", "wa_access_token", "wa_verify_token", "wg_contact_key"):
        assert forbidden not in lowered, forbidden


SECRETISH_KEY = re.compile(r"SECRET|TOKEN|PASSWORD|PRIVATE|CREDENTIAL|CONTACT_KEY", re.IGNORECASE)
SECRETISH_VALUE = re.compile(r"REPLACE_ME|^[A-Za-z0-9+/=_-]{32,}$|sha256=|Bearer |EAA[A-Za-z0-9]{20,}")


def test_function_environments_hold_no_secrets(synth: Synth) -> None:
    for name in synth.function_ids():
        for key, value in synth.env(name).items():
            if SECRETISH_KEY.search(key):
                assert key in c.ENV_SECRET_ID.values(), f"{name}: {key}"
                assert set(value) == {"Ref"}, f"{name}: {key} must be the secret's ARN (a Ref), not a value"
            if isinstance(value, str):
                assert not SECRETISH_VALUE.search(value), f"{name}: {key}={value[:40]}"
            else:
                assert set(value) <= {"Ref", "Fn::GetAtt"}, f"{name}: {key}"


# ---- functions -------------------------------------------------------------------------------------

EXPECTED_ENV = {
    "webhook": {c.ENV_SECRET_ID[c.SECRET_WEBHOOK], c.ENV_INBOUND_QUEUE_URL},
    "processor": {
        c.ENV_SECRET_ID[c.SECRET_PSEUDONYM],
        c.ENV_DATA_KEY_ARN,
        c.ENV_SEND_QUEUE_URL,
        c.ENV_MEDIA_QUEUE_URL,
        c.ENV_EVENT_BUS_NAME,
        *(
            c.ENV_TABLE[t]
            for t in (
                c.TABLE_CONTACTS,
                c.TABLE_MESSAGES,
                c.TABLE_CONSENT,
                c.TABLE_KEYS,
                c.TABLE_TEMPLATES,
                c.TABLE_PRIVACY,
                c.TABLE_AUDIT,
            )
        ),
    },
    "messages-api": {
        c.ENV_SECRET_ID[c.SECRET_PSEUDONYM],
        c.ENV_SECRET_ID[c.SECRET_GRAPH],
        c.ENV_DATA_KEY_ARN,
        c.ENV_SEND_QUEUE_URL,
        c.ENV_MEDIA_BUCKET,
        c.ENV_EVENT_BUS_NAME,
        *(
            c.ENV_TABLE[t]
            for t in (
                c.TABLE_CONTACTS,
                c.TABLE_MESSAGES,
                c.TABLE_CONSENT,
                c.TABLE_KEYS,
                c.TABLE_IDEMPOTENCY,
                c.TABLE_AUDIT,
                c.TABLE_TEMPLATES,
            )
        ),
    },
    "contacts-api": {
        c.ENV_SECRET_ID[c.SECRET_PSEUDONYM],
        c.ENV_DATA_KEY_ARN,
        c.ENV_EVENT_BUS_NAME,
        c.ENV_MEDIA_BUCKET,
        *(key for table, key in c.ENV_TABLE.items() if table != c.TABLE_TEMPLATES),
    },
    "sender": {
        c.ENV_SECRET_ID[c.SECRET_PSEUDONYM],
        c.ENV_SECRET_ID[c.SECRET_GRAPH],
        c.ENV_DATA_KEY_ARN,
        c.ENV_SEND_QUEUE_URL,
        c.ENV_EVENT_BUS_NAME,
        c.ENV_MEDIA_BUCKET,
        *(
            c.ENV_TABLE[t]
            for t in (c.TABLE_MESSAGES, c.TABLE_CONTACTS, c.TABLE_CONSENT, c.TABLE_KEYS, c.TABLE_TEMPLATES)
        ),
    },
    "media-worker": {
        c.ENV_SECRET_ID[c.SECRET_GRAPH],
        c.ENV_DATA_KEY_ARN,
        c.ENV_MEDIA_BUCKET,
        *(c.ENV_TABLE[t] for t in (c.TABLE_CONTACTS, c.TABLE_KEYS)),
    },
    "templates": {
        c.ENV_SECRET_ID[c.SECRET_GRAPH],
        c.ENV_EVENT_BUS_NAME,
        *(c.ENV_TABLE[t] for t in (c.TABLE_TEMPLATES, c.TABLE_AUDIT)),
    },
}
COMMON_ENV = {
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
    "POWERTOOLS_TRACER_CAPTURE_RESPONSE",
    "POWERTOOLS_TRACER_CAPTURE_ERROR",
    "POWERTOOLS_LOGGER_LOG_EVENT",
    c.ENV_SETTINGS,
}


def test_every_function_with_the_shared_defaults(synth: Synth) -> None:
    synth.template.resource_count_is("AWS::Lambda::Function", len(c.HANDLERS))
    synth.template.all_resources_properties(
        "AWS::Lambda::Function",
        {
            "Runtime": "python3.13",
            "Architectures": ["arm64"],
            "TracingConfig": {"Mode": "Active"},
            "LoggingConfig": Match.object_like({"LogFormat": "JSON"}),
            "ReservedConcurrentExecutions": Match.any_value(),
            "Layers": [
                {"Ref": Match.string_like_regexp("SsmParameterValueawsservicepowertoolspythonarm64python313")}
            ],
        },
    )
    fns = synth.function_ids()
    assert set(fns) == set(c.HANDLERS)
    params = synth.data["Parameters"]
    for name, logical_id in fns.items():
        props = synth.resources[logical_id]["Properties"]
        assert props["Handler"] == c.HANDLERS[name]
        assert props["ReservedConcurrentExecutions"] == synth.cfg.function(name).reserved_concurrency
        assert props["Timeout"] == synth.cfg.function(name).timeout_seconds
        (layer,) = props["Layers"]
        assert params[layer["Ref"]]["Default"] == (
            f"/aws/service/powertools/python/arm64/python3.13/{synth.cfg.powertools_version}"
        )
        log_group = synth.resources[ref(props["LoggingConfig"]["LogGroup"])]
        assert log_group["Type"] == "AWS::Logs::LogGroup"
        assert log_group["Properties"]["RetentionInDays"] == synth.cfg.log_retention_days
        assert "KmsKeyId" in log_group["Properties"]
        assert log_group["Properties"]["LogGroupName"] == f"/waguard/lambda/{name}"


def test_function_environment_is_exactly_what_each_needs(synth: Synth) -> None:
    for name, expected in EXPECTED_ENV.items():
        env = synth.env(name)
        assert set(env) == expected | COMMON_ENV, name
        assert env["POWERTOOLS_SERVICE_NAME"] == c.SERVICE_NAME
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == c.METRICS_NAMESPACE
        assert env[c.ENV_SETTINGS] == synth.cfg.settings_json()


def test_function_roles_have_only_their_own_customer_managed_policy(synth: Synth) -> None:
    synth.template.resource_count_is("AWS::IAM::Policy", 0)  # no inline policies anywhere
    roles = synth.of_type("AWS::IAM::Role")
    for role in roles.values():
        assert "Policies" not in role["Properties"]
    fns = synth.function_ids()
    policies = synth.of_type("AWS::IAM::ManagedPolicy")
    for name, logical_id in fns.items():
        role_id = ref(synth.resources[logical_id]["Properties"]["Role"])
        role = roles[role_id]["Properties"]
        assert "ManagedPolicyArns" not in role, f"{name} role has managed policy ARNs (AWS managed?)"
        assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
            "Service": "lambda.amazonaws.com"
        }
        attached = [
            pid for pid, p in policies.items() if {"Ref": role_id} in p["Properties"].get("Roles", [])
        ]
        main = [pid for pid in attached if pid in synth.resources[logical_id]["DependsOn"]]
        assert len(main) == 1, name
        sids = {s["Sid"] for s in statements(policies[main[0]])}
        assert {"WriteOwnLogGroup", "XRay"} <= sids
        assert ("ReadSecrets" in sids) is bool(SECRETS_OF[name])
        # the auditor alone has a second policy: reading its own configuration (its ARN cannot be in
        # the policy the function depends on)
        others = [statements(policies[pid]) for pid in attached if pid not in main]
        if name == c.FN_AUDITOR:
            assert [[s["Sid"] for s in o] for o in others] == [["AuditDescribeItself"]]
        else:
            assert others == [], name


def test_no_wildcard_actions_and_resource_star_only_for_xray(synth: Synth) -> None:
    for logical_id, policy in synth.of_type("AWS::IAM::ManagedPolicy").items():
        for statement in statements(policy):
            for action in as_list(statement["Action"]):
                assert "*" not in action, f"{logical_id}: {action}"
            if "*" in as_list(statement["Resource"]) and statement["Sid"] == "AuditReadIam":
                # IAM's ListRoles/ListUsers name no resource: the auditor's read-only IAM listing
                assert all(a.startswith(("iam:List", "iam:Get")) for a in as_list(statement["Action"]))
            elif "*" in as_list(statement["Resource"]):
                assert statement["Sid"] == "XRay", logical_id
                assert sorted(as_list(statement["Action"])) == [
                    "xray:PutTelemetryRecords",
                    "xray:PutTraceSegments",
                ]


def _function_statements(synth: Synth, name: str) -> dict[str, dict[str, Any]]:
    role_id = ref(synth.resources[synth.function_ids()[name]]["Properties"]["Role"])
    found: dict[str, dict[str, Any]] = {}
    for policy in synth.of_type("AWS::IAM::ManagedPolicy").values():
        if {"Ref": role_id} in policy["Properties"].get("Roles", []):
            found.update({s["Sid"]: s for s in statements(policy)})
    if not found:
        raise AssertionError(name)
    return found


def test_function_grants_follow_the_design(synth: Synth) -> None:
    tables = synth.table_ids()
    for name, expected in EXPECTED_ENV.items():
        granted = _function_statements(synth, name)
        wanted_tables = {tables[t] for t, key in c.ENV_TABLE.items() if key in expected}
        table_refs: set[str] = set()
        for sid, statement in granted.items():
            if sid.startswith("Tables"):
                table_refs |= refs_in(statement["Resource"])
        assert table_refs == wanted_tables, name
        assert ("FieldEncryptionBranchKeys" in granted) is (c.ENV_DATA_KEY_ARN in expected), name
        if "FieldEncryptionBranchKeys" in granted:
            branch = granted["FieldEncryptionBranchKeys"]
            assert sorted(as_list(branch["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey"]
            assert branch["Condition"] == {"StringEquals": {"kms:EncryptionContext:waguard": "branch"}}
        for statement in granted.values():
            if any(a.startswith("kms:") for a in as_list(statement["Action"])) and statement["Sid"] != (
                "FieldEncryptionBranchKeys"
            ):
                assert "kms:ViaService" in statement["Condition"]["StringEquals"], (name, statement["Sid"])
        assert "dynamodb:Scan" not in json.dumps(granted)
    assert "ConsumeQueue" not in _function_statements(synth, "webhook")
    # The sender re-queues only onto its own queue (a record deferred on its last receive).
    sender_targets = refs_in(_function_statements(synth, "sender")["SendToQueues"]["Resource"])
    consumed = refs_in(_function_statements(synth, "sender")["ConsumeQueue"]["Resource"])
    assert sender_targets == consumed and len(consumed) == 1
    assert "ChangeMessageVisibility" in json.dumps(_function_statements(synth, "sender")["ConsumeQueue"])


# ---- api -------------------------------------------------------------------------------------------

ROUTES = {
    "GET /webhook": ("webhook", "NONE"),
    "POST /webhook": ("webhook", "NONE"),
    "POST /messages": ("messages-api", "AWS_IAM"),
    "GET /messages/{id}": ("messages-api", "AWS_IAM"),
    "POST /messages/{id}/read": ("messages-api", "AWS_IAM"),
    "PUT /contacts/{contact}/consent": ("contacts-api", "AWS_IAM"),
    "GET /contacts/{contact}/consent": ("contacts-api", "AWS_IAM"),
    "GET /contacts/{contact}/export": ("contacts-api", "AWS_IAM"),
    "DELETE /contacts/{contact}": ("contacts-api", "AWS_IAM"),
    "GET /contacts/{contact}/messages": ("contacts-api", "AWS_IAM"),
    "GET /media/{id}": ("messages-api", "AWS_IAM"),
    "POST /media": ("messages-api", "AWS_IAM"),
    "GET /templates": ("templates", "AWS_IAM"),
    "POST /templates/sync": ("templates", "AWS_IAM"),
    "POST /templates": ("templates", "AWS_IAM"),
    "GET /audit/findings": ("auditor", "AWS_IAM"),
    "POST /audit/run": ("auditor", "AWS_IAM"),
    "POST /campaigns": ("campaigns", "AWS_IAM"),
    "GET /campaigns": ("campaigns", "AWS_IAM"),
    "GET /campaigns/{id}": ("campaigns", "AWS_IAM"),
    "GET /campaigns/{id}/recipients": ("campaigns", "AWS_IAM"),
    "POST /campaigns/{id}/cancel": ("campaigns", "AWS_IAM"),
    "POST /campaigns/{id}/resume": ("campaigns", "AWS_IAM"),
    "PUT /contacts/{contact}/restriction": ("contacts-api", "AWS_IAM"),
    "POST /privacy/requests": ("contacts-api", "AWS_IAM"),
    "GET /privacy/requests": ("contacts-api", "AWS_IAM"),
    "GET /privacy/requests/{id}": ("contacts-api", "AWS_IAM"),
    "GET /privacy/requests/{id}/export": ("contacts-api", "AWS_IAM"),
    "POST /privacy/requests/{id}/extend": ("contacts-api", "AWS_IAM"),
    "POST /privacy/requests/{id}/complete": ("contacts-api", "AWS_IAM"),
    "POST /privacy/requests/{id}/reject": ("contacts-api", "AWS_IAM"),
}


def _path_of(synth: Synth, resource_id: Any) -> str:
    parts: list[str] = []
    while isinstance(resource_id, dict) and "Ref" in resource_id:
        res = synth.resources[resource_id["Ref"]]
        if res["Type"] != "AWS::ApiGateway::Resource":
            break
        parts.insert(0, res["Properties"]["PathPart"])
        resource_id = res["Properties"]["ParentId"]
    return "/" + "/".join(parts)


def test_methods_auth_and_integrations(synth: Synth) -> None:
    methods = synth.of_type("AWS::ApiGateway::Method")
    fns = synth.function_ids()
    seen = {}
    for method in methods.values():
        props = method["Properties"]
        route = f"{props['HttpMethod']} {_path_of(synth, props['ResourceId'])}"
        assert method["Metadata"]["waguard:route"] == route
        seen[route] = props
        function, auth = ROUTES[route]
        assert method["Metadata"]["waguard:function"] == function
        assert props["AuthorizationType"] == auth, route
        integration = props["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        assert refs_in(integration["Uri"]) == {fns[function]}
        if auth == "AWS_IAM":
            assert "RequestValidatorId" in props, route
    assert set(seen) == set(ROUTES)
    (validator,) = synth.of_type("AWS::ApiGateway::RequestValidator").values()
    assert validator["Properties"]["ValidateRequestBody"] is True
    assert validator["Properties"]["ValidateRequestParameters"] is True


def test_stage_logging_tracing_throttling_and_tls(synth: Synth) -> None:
    (stage,) = synth.of_type("AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    assert props["StageName"] == synth.cfg.stage
    assert props["TracingEnabled"] is True
    (settings,) = props["MethodSettings"]
    assert settings["LoggingLevel"] == "ERROR"
    assert settings["DataTraceEnabled"] is False
    assert settings["ThrottlingRateLimit"] == synth.cfg.api_throttle.rate_limit
    assert settings["ThrottlingBurstLimit"] == synth.cfg.api_throttle.burst_limit
    log_format = props["AccessLogSetting"]["Format"]
    fields = json.loads(log_format)
    assert fields["resourcePath"] == "$context.resourcePath"
    assert "$context.path" not in log_format
    assert "querystring" not in log_format.lower() and "$input" not in log_format
    log_group = synth.resources[ref(props["AccessLogSetting"]["DestinationArn"])]
    assert "KmsKeyId" in log_group["Properties"]
    (api,) = synth.of_type("AWS::ApiGateway::RestApi").values()
    assert api["Properties"]["SecurityPolicy"] == "TLS_1_2"
    assert api["Properties"]["EndpointConfiguration"] == {"Types": ["REGIONAL"]}


def test_waf_associated_with_rate_limit_and_body_size_override(synth: Synth) -> None:
    ((acl_id, acl),) = synth.of_type("AWS::WAFv2::WebACL").items()
    props = acl["Properties"]
    assert props["Scope"] == "REGIONAL"
    rules = {r["Name"]: r for r in props["Rules"]}
    assert (
        rules["RateLimitPerIp"]["Statement"]["RateBasedStatement"]["Limit"]
        == synth.cfg.waf_rate_limit_per5_min
    )
    assert "Block" in rules["RateLimitPerIp"]["Action"]
    common = rules["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]
    assert {"ActionToUse": {"Count": {}}, "Name": "SizeRestrictions_BODY"} in common["RuleActionOverrides"]
    (association,) = synth.of_type("AWS::WAFv2::WebACLAssociation").values()
    (stage_id,) = synth.of_type("AWS::ApiGateway::Stage")
    assert stage_id in refs_in(association["Properties"]["ResourceArn"])
    assert ref(association["Properties"]["WebACLArn"]) == acl_id


def test_waf_logging_is_redacted(synth: Synth) -> None:
    (logging,) = synth.of_type("AWS::WAFv2::LoggingConfiguration").values()
    props = logging["Properties"]
    destination = json.dumps(props["LogDestinationConfigs"])
    assert ":log-group:aws-waf-logs-" in destination and not destination.endswith(':*"]')
    redacted = props["RedactedFields"]
    assert {"UriPath": {}} in redacted and {"QueryString": {}} in redacted
    headers = {f["SingleHeader"]["Name"] for f in redacted if "SingleHeader" in f}
    assert {"authorization", "x-hub-signature-256"} <= headers
    (waf_group,) = [
        g
        for g in synth.of_type("AWS::Logs::LogGroup").values()
        if g["Properties"]["LogGroupName"].startswith("aws-waf")
    ]
    assert "KmsKeyId" in waf_group["Properties"]


# ---- audit trail -----------------------------------------------------------------------------------


def test_trail(synth: Synth) -> None:
    (trail,) = synth.of_type("AWS::CloudTrail::Trail").values()
    props = trail["Properties"]
    assert props["IsMultiRegionTrail"] is True
    assert props["EnableLogFileValidation"] is True
    assert props["IsLogging"] is True
    assert "KMSKeyId" in props and "CloudWatchLogsLogGroupArn" in props and "CloudWatchLogsRoleArn" in props
    selectors = props["AdvancedEventSelectors"]
    assert any(
        s["FieldSelectors"] == [{"Field": "eventCategory", "Equals": ["Management"]}] for s in selectors
    )
    (data,) = [s for s in selectors if {"Field": "eventCategory", "Equals": ["Data"]} in s["FieldSelectors"]]
    fields = {f["Field"]: f["Equals"] for f in data["FieldSelectors"]}
    assert fields["resources.type"] == ["AWS::DynamoDB::Table"]
    assert refs_in(fields["resources.ARN"]) == set(synth.table_ids().values())
    group = synth.resources[ref(props["CloudWatchLogsLogGroupArn"])]
    assert "KmsKeyId" in group["Properties"] and "RetentionInDays" in group["Properties"]


def test_trail_bucket(synth: Synth) -> None:
    (trail,) = synth.of_type("AWS::CloudTrail::Trail").values()
    bucket_id = ref(trail["Properties"]["S3BucketName"])
    props = synth.resources[bucket_id]["Properties"]
    (encryption,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    log_bucket = ref(props["LoggingConfiguration"]["DestinationBucketName"])
    assert log_bucket != bucket_id and synth.resources[log_bucket]["Type"] == "AWS::S3::Bucket"
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == synth.cfg.trail_retention_days
    for policy in synth.of_type("AWS::S3::BucketPolicy").values():
        denies = [s for s in statements(policy) if s["Effect"] == "Deny"]
        assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


# ---- monitoring ------------------------------------------------------------------------------------


def test_alarms_publish_to_an_encrypted_topic(synth: Synth) -> None:
    ((topic_id, topic),) = synth.of_type("AWS::SNS::Topic").items()
    assert "KmsMasterKeyId" in topic["Properties"]
    alarms = synth.of_type("AWS::CloudWatch::Alarm")
    for logical_id, alarm in alarms.items():
        assert refs_in(alarm["Properties"]["AlarmActions"]) == {topic_id}, logical_id
    dlq_alarms = [
        a["Properties"]
        for a in alarms.values()
        if a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
    ]
    assert len(dlq_alarms) == 4  # inbound, send, media and events DLQs
    dlqs = {
        ref(q["deadLetterTargetArn"])
        for q in (
            r["Properties"]["RedrivePolicy"]
            for r in synth.of_type("AWS::SQS::Queue").values()
            if "RedrivePolicy" in r["Properties"]
        )
    } | {synth.stack.resolve(synth.stack.events.dlq.node.default_child.logical_id)}  # type: ignore[union-attr]
    for alarm in dlq_alarms:
        assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
        (dimension,) = alarm["Dimensions"]
        assert refs_in(dimension["Value"]) <= dlqs
    for metric in ("GraphAuthErrors", "GraphThrottled"):
        (alarm,) = [a["Properties"] for a in alarms.values() if a["Properties"].get("MetricName") == metric]
        assert alarm["Namespace"] == c.METRICS_NAMESPACE
        assert alarm["Dimensions"] == [{"Name": "service", "Value": c.SERVICE_NAME}]
    errors = [a for a in alarms.values() if a["Properties"].get("MetricName") == "Errors"]
    assert len(errors) == len(c.HANDLERS)  # one per function


def _table_actions(synth: Synth, name: str) -> dict[str, set[str]]:
    """Table logical name -> DynamoDB actions the function's role may take on it."""
    ids = {v: k for k, v in synth.table_ids().items()}
    out: dict[str, set[str]] = {}
    for sid, statement in _function_statements(synth, name).items():
        if sid.startswith("Tables"):
            for table_id in refs_in(statement["Resource"]) & set(ids):
                out.setdefault(ids[table_id], set()).update(as_list(statement["Action"]))
    return out


def test_only_erasure_deletes_keys_consent_contacts_and_nobody_rewrites_audit(synth: Synth) -> None:
    destructive = {"dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
    for name in EXPECTED_ENV:
        actions = _table_actions(synth, name)
        for table in (c.TABLE_KEYS, c.TABLE_CONSENT, c.TABLE_CONTACTS):
            may_delete = bool(actions.get(table, set()) & destructive)
            assert may_delete is (name == c.FN_CONTACTS_API), (name, table)
        if c.TABLE_AUDIT in actions:
            assert actions[c.TABLE_AUDIT] == {"dynamodb:PutItem"}, name
        if c.TABLE_CONSENT in actions:
            assert "dynamodb:UpdateItem" not in actions[c.TABLE_CONSENT] or name == c.FN_CONTACTS_API, name
