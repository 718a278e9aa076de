"""aws_cost: AWS cost per 1,000 outbound messages, each with its three status webhooks (sent, delivered,
read), for a single send and for a campaign message, from what `bench.aws_calls` measures in the same run
(the AWS calls and their parameters, every handler invocation's own CPU) and us-east-1 list prices.

Model (stated, not hidden):
- API Gateway REST and WAF: one request per `POST /messages` (or `POST /campaigns`) and per webhook POST;
- Lambda: one request per invocation; duration per invocation = own CPU / the vCPU share of the function's
  memory (cdk.json; 1,769 MB is one vCPU) + its AWS calls x `AWS_CALL_MS` (the sender's calls spread over
  its concurrent records) + the Graph API's `GRAPH_MS` when the invocation sends; GB-s = memory x duration;
- SQS: the functions' own calls plus the event-source mapping's ReceiveMessage and DeleteMessageBatch per
  batch (Lambda's idle long polling is per queue and hour, not per message, and is left out);
- DynamoDB on demand: a write of an item up to 1 KB is 1 WRU (the measured item sizes are reported), an
  item in a transaction 2 (ConditionChecks counted as writes: an upper bound), plus 1 per write to the
  messages table per global index holding the item (by_msg_id, by_wamid: a put by its attributes, an
  update of an outbound or inbound item counted in both, an upper bound); a consistent read or Query
  of up to 4 KB is 1 RRU, an eventually consistent one 0.5;
- EventBridge: one custom event per PutEvents entry (each under 64 KB); KMS and Secrets Manager: the
  client calls seen (server-side SQS/DynamoDB key use is cached by those services and not per message);
- CloudTrail: one data event per DynamoDB call (the trail logs the tables' data events).
Not included: monthly fixed charges (KMS keys, WAF web ACL and rules, CloudWatch alarms), CloudWatch Logs
ingestion, data transfer, free tiers. Tiered discounts are not applied (the first tier is the highest).
"""

from __future__ import annotations

import json
import math
from typing import Any

AWS_CALL_MS = 10.0  # one in-region DynamoDB/SQS/EventBridge call, conservative (as bench/sender.py)
GRAPH_MS = 100.0  # Meta's Graph API answering a send (as bench/sender.py)
GOAL_USD_PER_1000 = 0.05
READ = "2026-12-07"  # the date the prices below were read (confirmed where `confirmed` says so)

# Each price: USD per unit, the unit, the AWS pricing page, and how it was confirmed on READ.
PRICES: dict[str, dict[str, Any]] = {
    "api_gateway_rest": {
        "usd": 3.50 / 1e6,
        "unit": "request (REST API, first 333 million a month)",
        "source": "https://aws.amazon.com/api-gateway/pricing/",
        "confirmed": "search (pages): awsforengineers.com and go-cloud.io quote $3.50 per million",
    },
    "waf_request": {
        "usd": 0.60 / 1e6,
        "unit": "request inspected by a web ACL",
        "source": "https://aws.amazon.com/waf/pricing/",
        "confirmed": "search (pages): c3x.dev and awsnegotiations.com quote $0.60 per million",
    },
    "lambda_request": {
        "usd": 0.20 / 1e6,
        "unit": "invocation",
        "source": "https://aws.amazon.com/lambda/pricing/",
        "confirmed": "search (pages): a Lambda cost guide quotes $0.20 per million for both architectures",
    },
    "lambda_arm64_gb_s": {
        "usd": 0.0000133334,
        "unit": "GB-second, arm64 (first 7.5 billion GB-s a month)",
        "source": "https://aws.amazon.com/lambda/pricing/",
        "confirmed": "search (pages): cloudchipr.com quotes $0.0000133334 per GB-s for Arm",
    },
    "sqs_request": {
        "usd": 0.40 / 1e6,
        "unit": "standard-queue request of up to 64 KB",
        "source": "https://aws.amazon.com/sqs/pricing/",
        "confirmed": "search (pages): cloudburn.io and factualminds.com quote $0.40 per million",
    },
    "dynamodb_wru": {
        "usd": 0.625 / 1e6,
        "unit": "on-demand write request unit",
        "source": "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        "confirmed": "search (pages): airbyte.com quotes $0.625 per million WRU (after the Nov 2024 cut)",
    },
    "dynamodb_rru": {
        "usd": 0.125 / 1e6,
        "unit": "on-demand read request unit",
        "source": "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        "confirmed": "search (pages): airbyte.com quotes $0.125 per million RRU (after the Nov 2024 cut)",
    },
    "kms_request": {
        "usd": 0.03 / 1e4,
        "unit": "symmetric-key request",
        "source": "https://aws.amazon.com/kms/pricing/",
        "confirmed": "search (pages): wring.co and factualminds.com quote $0.03 per 10,000",
    },
    "eventbridge_event": {
        "usd": 1.00 / 1e6,
        "unit": "custom event put on a bus (64 KB chunk)",
        "source": "https://aws.amazon.com/eventbridge/pricing/",
        "confirmed": "search (pages): cloudburn.io and factualminds.com quote $1.00 per million",
    },
    "secretsmanager_call": {
        "usd": 0.05 / 1e4,
        "unit": "API call",
        "source": "https://aws.amazon.com/secrets-manager/pricing/",
        "confirmed": "not confirmed by search (from the pricing page as remembered)",
    },
    "cloudtrail_data_event": {
        "usd": 0.10 / 1e5,
        "unit": "data event delivered",
        "source": "https://aws.amazon.com/cloudtrail/pricing/",
        "confirmed": "given by issue 23 ($0.10 per 100,000)",
    },
}
# Channel fees per message, for comparison (not AWS infrastructure).
CHANNEL_FEES: dict[str, dict[str, Any]] = {
    "twilio": {
        "usd": 0.005,
        "source": "https://www.twilio.com/whatsapp/pricing",
        "confirmed": "search (pages): Twilio's page: $0.005 per message, inbound or outbound",
    },
    "aws_end_user_messaging_social": {
        "usd": 0.005,
        "source": "https://aws.amazon.com/end-user-messaging/pricing/",
        "confirmed": "not confirmed by search: the docs name the AWS MessageFee per message sent or received "
        "(docs.aws.amazon.com/social-messaging/latest/userguide/charged-per-conversation.html) but the "
        "amount ($0.005, as remembered from the pricing page) was not found",
    },
}


def _memory_mb() -> dict[str, int]:
    from bench.stack import ROOT

    cfg = json.loads((ROOT / "cdk.json").read_text())["context"]["waguard"]
    return {name: int(f["memoryMb"]) for name, f in cfg["functions"].items()}


def units(log: list[tuple[str, str, dict[str, Any]]], messages_table: str) -> dict[str, float]:
    """Billable units of the AWS calls in `log` (the meter's (service, operation, params))."""
    out = {"wru": 0.0, "rru": 0.0, "sqs": 0.0, "events": 0.0, "kms": 0.0, "secrets": 0.0, "ddb_calls": 0.0}
    sizes: list[int] = []

    def write(table: str | None, body: dict[str, Any] | None, factor: float) -> None:
        body = body or {}
        item = body.get("Item")
        size = len(json.dumps(item, default=str)) if item else 0
        if item:
            sizes.append(size)
        out["wru"] += factor * max(1, math.ceil(size / 1024))
        if table == messages_table:  # each global index holding the item is written too
            out["wru"] += _indexed(item, body.get("Key"))

    for service, op, params in log:
        if service == "dynamodb":
            out["ddb_calls"] += 1
            read = 1.0 if params.get("ConsistentRead") else 0.5
            if op in ("PutItem", "UpdateItem", "DeleteItem"):
                write(params.get("TableName"), params, 1)
            elif op == "TransactWriteItems":
                for entry in params.get("TransactItems") or []:
                    for kind, body in entry.items():
                        write(
                            body.get("TableName") if kind != "ConditionCheck" else None, body.get("Item"), 2
                        )
            elif op == "BatchWriteItem":
                for table, requests in (params.get("RequestItems") or {}).items():
                    for r in requests:
                        write(table, r.get("PutRequest") or r.get("DeleteRequest") or {}, 1)
            elif op == "GetItem" or op == "Query":
                out["rru"] += read
            elif op == "BatchGetItem":
                for spec in (params.get("RequestItems") or {}).values():
                    out["rru"] += (1.0 if spec.get("ConsistentRead") else 0.5) * len(spec.get("Keys") or [])
        elif service == "sqs":
            out["sqs"] += 1
        elif service == "events":
            out["events"] += len(params.get("Entries") or [])
        elif service == "kms":
            out["kms"] += 1
        elif service == "secretsmanager":
            out["secrets"] += 1
    out["mean_written_item_bytes"] = round(sum(sizes) / len(sizes)) if sizes else 0
    out["max_written_item_bytes"] = max(sizes, default=0)
    return out


def _indexed(item: dict[str, Any] | None, key: dict[str, Any] | None) -> int:
    """How many of the messages table's global indexes (by_msg_id, by_wamid) a write touches: a put's
    item by its attributes; an update of an outbound or inbound item both (an upper bound)."""
    if item:
        return sum(1 for attr in ("msg_id", "wamid_h") if attr in item)
    sk = json.dumps((key or {}).get("sk", ""), default=str)
    return 2 if ("OUT#" in sk or "IN#" in sk) else 0


def cost(phase: dict[str, Any], used: dict[str, float], http_requests: int) -> dict[str, Any]:
    """USD per 1,000 messages of one measured phase, by line."""
    memory = _memory_mb()
    n = phase["messages"]
    gb_s = 0.0
    invocations = 0
    durations: dict[str, float] = {}
    for name, f in phase["functions"].items():
        if not f["invocations"]:
            continue
        mb = memory[name]
        share = min(1.0, mb / 1769)
        per = f["invocations"]
        threads = max(1.0, f["records"] / per) if name == "sender" else 1.0
        ms = (f["cpu_s"] / per) * 1000 / share + (f["calls"] / per / threads) * AWS_CALL_MS
        if name == "sender":
            ms += GRAPH_MS
        durations[name] = round(ms, 1)
        gb_s += mb / 1024 * ms / 1000 * per
        invocations += per
    polled = sum(
        f["invocations"] for name, f in phase["functions"].items() if name in ("sender", "processor")
    )
    lines = {
        "api_gateway_rest": http_requests * PRICES["api_gateway_rest"]["usd"],
        "waf": http_requests * PRICES["waf_request"]["usd"],
        "lambda_requests": invocations * PRICES["lambda_request"]["usd"],
        "lambda_duration": gb_s * PRICES["lambda_arm64_gb_s"]["usd"],
        "sqs": (used["sqs"] + 2 * polled) * PRICES["sqs_request"]["usd"],
        "dynamodb_writes": used["wru"] * PRICES["dynamodb_wru"]["usd"],
        "dynamodb_reads": used["rru"] * PRICES["dynamodb_rru"]["usd"],
        "kms": used["kms"] * PRICES["kms_request"]["usd"],
        "eventbridge": used["events"] * PRICES["eventbridge_event"]["usd"],
        "secrets_manager": used["secrets"] * PRICES["secretsmanager_call"]["usd"],
        "cloudtrail_data_events": used["ddb_calls"] * PRICES["cloudtrail_data_event"]["usd"],
    }
    per_1000 = {k: round(v * 1000 / n, 6) for k, v in lines.items()}
    total = round(sum(per_1000.values()), 5)
    return {
        "messages": n,
        "usd_per_1000": total,
        "by_line_usd_per_1000": per_1000,
        "per_message_units": {
            "http_requests": round(http_requests / n, 3),
            "lambda_invocations": round(invocations / n, 3),
            "lambda_gb_s": round(gb_s / n, 5),
            "sqs_requests": round((used["sqs"] + 2 * polled) / n, 3),
            "wru": round(used["wru"] / n, 2),
            "rru": round(used["rru"] / n, 2),
            "events": round(used["events"] / n, 2),
            "dynamodb_calls": round(used["ddb_calls"] / n, 2),
        },
        "modelled_invocation_ms": durations,
        "mean_written_item_bytes": used["mean_written_item_bytes"],
        "max_written_item_bytes": used["max_written_item_bytes"],
        "goal_usd_per_1000": GOAL_USD_PER_1000,
        "met": total <= GOAL_USD_PER_1000,
    }


def run(outbound: int = 200, campaign: int = 200) -> dict[str, Any]:
    from bench import aws_calls

    got = aws_calls.measure(outbound=outbound, campaign=campaign, inbound=False, keep_params=True)
    single, camp = got["outbound"], got["campaign"]
    single_cost = cost(single, got["units"]["outbound"], single["messages"] + single["messages"])
    campaign_cost = cost(camp, got["units"]["campaign"], 1 + camp["messages"])
    fees = {k: v["usd"] * 1000 for k, v in CHANNEL_FEES.items()}
    return {
        "method": "measured AWS calls and handler CPU (bench.aws_calls, same run) priced at us-east-1 list "
        f"prices read {READ}; see bench/cost.py for the model",
        "single_send": single_cost,
        "campaign_message": campaign_cost,
        "prices": PRICES,
        "channel_fees_usd_per_1000": fees,
        "channel_fee_sources": CHANNEL_FEES,
        "ratio_to_twilio_fee": round(single_cost["usd_per_1000"] / fees["twilio"], 3),
        "goal_usd_per_1000": GOAL_USD_PER_1000,
        "met": single_cost["met"] and campaign_cost["met"],
    }
