"""docs/performance.md, rendered from bench/results.json (never edited by hand: `make bench` rewrites it,
`python -m bench.run --render-only` re-renders it)."""

from __future__ import annotations

from typing import Any


def _met(value: Any) -> str:
    return {True: "met", False: "**missed**"}.get(value, "n/a")


def _x(value: Any) -> str:
    return f"{value:.2f}x" if isinstance(value, int | float) else "n/a"


def headline(name: str, r: dict[str, Any]) -> str:
    """One line per section for the console."""
    if "error" in r:
        return "ERROR " + r["error"]
    try:
        if name == "cold_import":
            parts = [f"{k} {v['ratio_to_boto3']}x" for k, v in r["handlers"].items()]
            return f"boto3 {r['baseline']['median_ms']} ms; " + ", ".join(parts)
        if name == "webhook_latency":
            h = r["handler"]
            return f"p50 {h['p50_ms']} ms ({r['p50_ratio']}x), p99 {h['p99_ms']} ms ({r['p99_ratio']}x)"
        if name == "aws_calls_per_message":
            return (
                f"inbound {r['inbound']['calls_per_message']} calls/msg, outbound "
                f"{r['outbound']['calls_per_message']}, campaign "
                f"{(r.get('campaign') or {}).get('calls_per_message')}, KMS "
                f"{r['inbound']['kms_calls_per_1000_messages']}/1000"
            )
        if name == "aws_cost":
            return (
                f"${r['single_send']['usd_per_1000']} per 1,000 single sends, "
                f"${r['campaign_message']['usd_per_1000']} per 1,000 campaign messages (goal "
                f"${r['goal_usd_per_1000']})"
            )
        if name == "dsr_scaling":
            top = r["by_size"][str(r["other_items"][-1])]
            return (
                f"export {top['export']['items_read']} items, erase {top['erase']['items_read']} items at "
                f"{r['other_items'][-1]} other items; time x{r['time_ratio_largest_to_baseline']}, in plain "
                f"Queries x{r.get('time_in_bare_queries_ratio_largest_to_baseline')}"
            )
        if name == "sender_throughput":
            conc = r["implied_concurrency"]
            dep = r["deployed"]
            return (
                f"{r['msg_per_s_per_invocation']} msg/s per invocation (one core), "
                f"{dep['msg_per_s_per_invocation']} at {dep['memory_mb']} MB; concurrency {conc}"
            )
        if name == "synth_seconds":
            return f"{r['seconds']} s (minimal app {r['baseline']['seconds']} s)"
        if name == "campaign_pacing":
            return (
                f"{r['recipients']} recipients at {r['configured_rate']}/s: windows {r['min_rate']}.."
                f"{r['max_rate']}/s (max deviation {r['max_deviation']}), {r['duplicates']} duplicates, "
                f"{r['lost']} lost"
            )
        if name in ("media_memory", "media_send_memory"):
            peak, memory = r["peak_traced_mb"], r["function_memory_mb"]
            return f"{r['document_mb']} MB document: peak {peak} MB of {memory} MB"
    except (KeyError, TypeError) as exc:
        return f"(incomplete: {exc})"
    return ""


def _cold_import(r: dict[str, Any]) -> list[str]:
    base = r["baseline"]
    out = [
        f"Baseline `import boto3`: median **{base['median_ms']} ms** (min {base['min_ms']} ms). "
        f"{r['method']}.",
        "",
        "| function | module | median | min | ratio to boto3 | goal | |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for name, h in r["handlers"].items():
        out.append(
            f"| {name} | `{h['module']}` | {h['median_ms']} ms | {h['min_ms']} ms | "
            f"{_x(h['ratio_to_boto3'])} "
            f"| <= {h['goal_ratio']}x | {_met(h['met'])} |"
        )
    out += [
        "",
        "Heaviest packages each handler imports (`-X importtime`, self time summed per package; one run):",
        "",
    ]
    for name, h in r["handlers"].items():
        parts = [
            f"{p['package']} {p['ms']} ms" + (" (boto3 too)" if p["also_in_boto3"] else "")
            for p in h["heaviest_packages"]
        ]
        out.append(f"- {name}: " + ", ".join(parts))
    if any(p["package"] == "aws_xray_sdk" for h in r["handlers"].values() for p in h["heaviest_packages"]):
        out += [
            "",
            "`aws_xray_sdk` is imported by `shared/observability.py`, whose module-level Powertools `Tracer` "
            "builds "
            "the X-Ray recorder (two botocore clients) at import; no handler uses the tracer (Lambda's "
            "active "
            "tracing needs no SDK).",
        ]
    return out


def _latency(r: dict[str, Any]) -> list[str]:
    h, b = r["handler"], r["baseline"]
    return [
        f"{r['method']}.",
        "",
        "| | p50 | p99 | mean |",
        "|---|---:|---:|---:|",
        f"| `handlers.webhook.handler` | {h['p50_ms']} ms | {h['p99_ms']} ms | {h['mean_ms']} ms |",
        f"| baseline: {b['what']} | {b['p50_ms']} ms | {b['p99_ms']} ms | {b['mean_ms']} ms |",
        f"| ratio (goal <= {r['goal_ratio']}x) | {_x(r['p50_ratio'])} | {_x(r['p99_ratio'])} | |",
        "",
        f"Goal: {_met(r['met'])}.",
    ]


def _ops(ops: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in sorted(ops.items(), key=lambda kv: -kv[1]))


def _aws_calls(r: dict[str, Any]) -> list[str]:
    i, o, b = r["inbound"], r["outbound"], r["baseline"]
    first, ret = i["first_message_of_a_contact"], i["returning_contact"]
    return [
        f"{r['method']}.",
        "",
        "| per message | AWS calls | webhook | processor | goal | |",
        "|---|---:|---:|---:|---:|---|",
        f"| inbound, all {i['messages']} | **{i['calls_per_message']}** | | | <= "
        f"{r['goal_inbound_calls_per_message']:g} "
        f"| {_met(r.get('inbound_met', r['met']))} |",
        f"| inbound, first message of a contact ({first['messages']}) | {first['calls_per_message']} "
        f"| {first['webhook_calls_per_message']} | {first['processor_calls_per_message']} | | |",
        f"| inbound, returning contact ({ret['messages']}) | {ret['calls_per_message']} "
        f"| {ret['webhook_calls_per_message']} | {ret['processor_calls_per_message']} | | |",
        f"| baseline: {b['what']} | {b['calls_per_message']} | | | | |",
        "",
        f"- Inbound, returning contact, by operation: {_ops(ret['by_operation'])}.",
        f"- Inbound, first message, by operation: {_ops(first['by_operation'])}.",
        f"- Outbound ({o['messages']} messages; `POST /messages` + sender + "
        f"{o['status_webhooks_per_message']} "
        f"status webhooks each): **{o['calls_per_message']}** calls per message = send API "
        f"{o['send_api_calls_per_message']} + sender {o['sender_calls_per_message']} + status webhooks "
        f"{o['status_webhooks_calls_per_message']}; by operation: {_ops(o['by_operation'])}. Goal <= "
        f"{o.get('goal_calls_per_message', 12):g}: {_met(o.get('met'))}.",
        *_phases("Outbound", o),
        *_campaign_lines(r.get("campaign")),
        f"- KMS: **{i['kms_calls_per_1000_messages']} calls per 1,000 inbound messages** in one warm "
        "container "
        f"({i['kms_calls']} in {i['messages']}; `FieldCipher.kms_calls` counted "
        f"{i['field_cipher_kms_calls']}); "
        f"outbound {o['kms_calls_per_1000_messages']} per 1,000. A cold container adds one `GenerateDataKey` "
        "or "
        "`Decrypt` for its branch key (cached 15 min). SQS and DynamoDB server-side encryption calls are "
        "AWS's, "
        "not the function's, and are not visible here.",
    ]


def _phases(label: str, o: dict[str, Any]) -> list[str]:
    return [f"  - {label}, {k.replace('_', ' ')}: {_ops(v)}." for k, v in (o.get("phases") or {}).items()]


def _campaign_lines(c: dict[str, Any] | None) -> list[str]:
    if not c:
        return []
    return [
        f"- Campaign ({c['messages']} recipients who granted marketing consent; `POST /campaigns` + the "
        "campaign's steps and sends + 3 status webhooks each): "
        f"**{c['calls_per_message']}** calls per message = campaign API {c['campaign_api_calls_per_message']}"
        f" + sender {c['sender_calls_per_message']} + status webhooks "
        f"{c['status_webhooks_calls_per_message']}. Goal <= {c['goal_calls_per_message']:g}: "
        f"{_met(c['met'])}.",
        *_phases("Campaign", c),
    ]


def _cost_rows(label: str, x: dict[str, Any]) -> list[str]:
    lines = x["by_line_usd_per_1000"]
    u = x["per_message_units"]
    return [
        f"| {label} | **${x['usd_per_1000']}** | "
        + " | ".join(f"{lines[k]:.5f}" for k in COST_LINES)
        + f" | {_met(x['met'])} |",
        f"| ...units per message | | {u['http_requests']} req | {u['http_requests']} req | "
        f"{u['lambda_invocations']} inv | {u['lambda_gb_s']} GB-s | {u['sqs_requests']} req | "
        f"{u['wru']} WRU | {u['rru']} RRU | | {u['events']} events | | {u['dynamodb_calls']} events | |",
    ]


COST_LINES = (
    "api_gateway_rest",
    "waf",
    "lambda_requests",
    "lambda_duration",
    "sqs",
    "dynamodb_writes",
    "dynamodb_reads",
    "kms",
    "eventbridge",
    "secrets_manager",
    "cloudtrail_data_events",
)


def _cost(r: dict[str, Any]) -> list[str]:
    single, camp = r["single_send"], r["campaign_message"]
    fees = r["channel_fees_usd_per_1000"]
    head = " | ".join(k.replace("_", " ") for k in COST_LINES)
    out = [
        f"{r['method']}.",
        "",
        f"USD per 1,000 messages, each with its 3 status webhooks (goal <= ${r['goal_usd_per_1000']}):",
        "",
        f"| | total | {head} | |",
        "|---|---:|" + "---:|" * len(COST_LINES) + "---|",
        *_cost_rows("single send", single),
        *_cost_rows("campaign message", camp),
        "",
        f"Modelled invocation times (ms): single send {single['modelled_invocation_ms']}; campaign "
        f"{camp['modelled_invocation_ms']}. Written items: mean {single['mean_written_item_bytes']} bytes, "
        f"largest {max(single['max_written_item_bytes'], camp['max_written_item_bytes'])} bytes (typed "
        "JSON, an upper bound of DynamoDB's item size).",
        "",
        "For comparison, the channel's own fee per 1,000 messages (on top of Meta's template fees, which "
        "waguard's users pay too): "
        + ", ".join(f"{k.replace('_', ' ')} ${v:g}" for k, v in fees.items())
        + f"; waguard's AWS cost for a single send is {r['ratio_to_twilio_fee']:g}x Twilio's fee.",
        "",
        "Prices (us-east-1, USD; the page, and how each was confirmed):",
        "",
    ]
    for name, p in {**r["prices"], **r["channel_fee_sources"]}.items():
        out.append(
            f"- `{name}`: {p['usd']:g} per {p.get('unit', 'message')}; {p['source']}; {p['confirmed']}."
        )
    return out


def _dsr(r: dict[str, Any]) -> list[str]:
    out = [
        f"{r['method']}.",
        "",
        "| other items | export ms | export items read | export calls | erase ms | erase items read | "
        "erase calls | items deleted | one plain Query (moto) | export / erase in plain Queries |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in r["other_items"]:
        x = r["by_size"][str(size)]
        e, d = x["export"], x["erase"]
        out.append(
            f"| {size:,} | {e['ms']} | {e['items_read']} | {e['aws_calls']} | {d['ms']} | {d['items_read']} "
            f"| {d['aws_calls']} | {d['items_deleted']} | {x.get('bare_query_ms', 'n/a')} ms "
            f"| {e.get('in_bare_queries', 'n/a')} / {d.get('in_bare_queries', 'n/a')} |"
        )
    ratio = r["time_ratio_largest_to_baseline"]
    norm = r.get("time_in_bare_queries_ratio_largest_to_baseline", {})
    out += [
        "",
        f"Baseline: the same measurement at {r['other_items'][0]:,} other items, and one plain partition "
        "Query at "
        f"each size. Items read identical at every size: **{r['items_read_flat']}**. Time at the largest "
        "size vs "
        f"baseline: export {_x(ratio['export'])}, erase {_x(ratio['erase'])} in milliseconds; in plain-Query "
        "units "
        f"export {_x(norm.get('export'))}, erase {_x(norm.get('erase'))}. Goal (flat in the table size): "
        f"{_met(r['met'])}.",
        "",
        "Both read by key only (partition queries on the contact's pseudonyms and GetItem), never Scan, so "
        "in "
        "DynamoDB their cost depends on the contact's items alone. moto's Query walks every item of the "
        "table "
        "to find a partition, which is why its milliseconds grow with the table while the items read do not.",
        f"Filling moto took {', '.join(f'{k}: {v} s' for k, v in r['fill_seconds'].items())} (untimed).",
    ]
    return out


def _sender(r: dict[str, Any]) -> list[str]:
    m, b, core, dep = r["measured_in_process"], r["baseline"], r["model_one_core"], r["deployed"]
    conc = r["implied_concurrency"]
    return [
        f"{r['method']}.",
        "",
        "| | invocation (batch of 10) | msg/s per invocation |",
        "|---|---:|---:|",
        f"| sender on one core: max(thread path {core['thread_path_ms']} ms, batch CPU "
        f"{core['batch_cpu_ms']} ms) "
        f"| {core['ms']} ms | **{r['msg_per_s_per_invocation']}** |",
        f"| sender at its deployed {dep['memory_mb']} MB ({dep['vcpu_share']} vCPU): "
        f"max({dep['thread_path_ms']} ms, "
        f"{dep['batch_cpu_ms']} ms) | {dep['ms']} ms | {dep['msg_per_s_per_invocation']} |",
        f"| sender, raw in-process wall time (moto-bound) | {m['raw_invocation_p50_ms']} ms | "
        f"{m['raw_msg_per_s']} |",
        f"| baseline: {b['what']} | {b['invocation_p50_ms']} ms | {b['msg_per_s']} |",
        "",
        f"Measured parts: {m['aws_calls_per_message']} AWS calls per message, "
        f"{m['function_cpu_ms_per_message']} ms "
        f"of the function's own CPU per message (this machine), moto's {m['moto_cpu_ms_per_message']} ms per "
        "message taken out.",
        "",
        f"Goal >= {r['goal_msg_per_s']:g} msg/s per invocation at the deployed memory: {_met(r['met'])} "
        f"({_x(r['ratio_to_baseline'])} of the bare baseline). Implied concurrency on one core: "
        + ", ".join(f"{k} msg/s -> {v} concurrent invocations" for k, v in conc.items())
        + "; at the deployed memory: "
        + ", ".join(f"{k} msg/s -> {v}" for k, v in dep["implied_concurrency"].items())
        + ". (The deployed figure scales this machine's CPU time by the memory's vCPU share; Lambda's arm64 "
        "cores differ from this machine's, so it is an estimate.)",
    ]


def _synth(r: dict[str, Any]) -> list[str]:
    return [
        f"{r['method']}.",
        "",
        "| | seconds |",
        "|---|---:|",
        f"| `make synth` ({r['template_resources']} resources, four packs) | **{r['seconds']}** |",
        f"| baseline: {r['baseline']['what']} | {r['baseline']['seconds']} |",
        f"| ratio | {_x(r['ratio_to_baseline'])} |",
    ]


def _peak(r: dict[str, Any]) -> str:
    """The figure both media sections end with: peak memory against the function's, time, goal."""
    return (
        f"peak traced memory **{r['peak_traced_mb']} MB** against the function's {r['function_memory_mb']} "
        f"MB, in {r['seconds']} s. Goal: {r['goal']}: {_met(r['met'])}."
    )


def _media(r: dict[str, Any]) -> list[str]:
    return [
        f"A {r['document_mb']} MB document through the media worker (fetch, seal per 1 MiB chunk, multipart "
        f"upload in {r['parts']} parts of at most {r['largest_part_mb']} MB): " + _peak(r),
    ]


def _media_send(r: dict[str, Any]) -> list[str]:
    return [
        f"A {r['document_mb']} MB upload sent by `media_id` through the sender (the contact's own copy "
        f"sealed chunk by chunk and put in parts, then streamed to Meta's media upload as a multipart form, "
        f"{r['sent_to_meta_mb']} MB received by the stand-in): " + _peak(r),
    ]


def _pacing(r: dict[str, Any]) -> list[str]:
    dev = r.get("max_deviation")
    return [
        f"{r['method']}.",
        "",
        "| | measured | baseline (configured) |",
        "|---|---:|---:|",
        f"| full {r.get('full_windows')} windows of {10} s: lowest / highest rate (msg/s) | "
        f"**{r.get('min_rate')} / {r.get('max_rate')}** | {r['configured_rate']} |",
        f"| largest deviation of a window from the configured rate | **{dev * 100:.1f}%** | 0% |"
        if isinstance(dev, int | float)
        else "| largest deviation | n/a | 0% |",
        f"| overall rate, first to last send (msg/s) | {r.get('overall_rate')} | {r['configured_rate']} |",
        f"| sent / duplicates / lost | {r['sent']} / **{r['duplicates']}** / **{r['lost']}** | "
        f"{r['recipients']} / 0 / 0 |",
        *(
            [f"| not yet sent when the run was stopped (not lost) | {r['not_sent_when_stopped']} | 0 |"]
            if r.get("not_sent_when_stopped")
            else []
        ),
        "",
        f"Windows (msg/s): {', '.join(str(x) for x in r.get('windows', []))}.",
        "",
        f"Campaign {r['final_status']} in {r['run_seconds']} s ({r['invocations']} sender invocations, "
        f"{r['records']} records of which {r['records_retried']} retried: deferred by the budget or by a "
        f"step's lease; {r['invocation_errors']} invocation errors). Counts {r['counts']}; counters equal a "
        f"recount of the recipient lines: {r['counters_equal_recount']}. Seeding {r['recipients']} grants "
        f"took {r['seed_seconds']} s and `POST /campaigns` {r['submit_seconds']} s (untimed).",
        "",
        f"Goal: every window within {r['tolerance'] * 100:g}% of the configured rate, 0 duplicates, 0 lost: "
        f"{_met(r['met'])}. The rate is chosen for this machine (moto in-process costs several ms of Python "
        "CPU per AWS call under one GIL), not for AWS; the slots are 1/rate apart whatever the rate. moto's "
        "whole database lives in the harness's heap, which a deployed sender's never holds: it is frozen "
        "out of Python's full garbage collections (`bench/pacing.py`), whose second-long pauses otherwise "
        "stalled every sender at once.",
    ]


RENDERERS = {
    "cold_import": ("Cold import", _cold_import),
    "webhook_latency": ("Webhook latency", _latency),
    "aws_calls_per_message": ("AWS calls per message", _aws_calls),
    "dsr_scaling": ("Export and erasure against table size", _dsr),
    "sender_throughput": ("Sender throughput", _sender),
    "aws_cost": ("AWS cost per 1,000 outbound messages", _cost),
    "synth_seconds": ("Synth time", _synth),
    "media_memory": ("Media worker memory", _media),
    "media_send_memory": ("Sender memory for media", _media_send),
    "campaign_pacing": ("Campaign pacing accuracy", _pacing),
}


def _summary(results: dict[str, Any]) -> list[str]:
    rows = ["| figure | measured | baseline (same run) | goal | |", "|---|---|---|---|---|"]
    r = results.get("cold_import") or {}
    if "handlers" in r:
        worst = max(
            (h for n, h in r["handlers"].items() if n != "webhook"),
            key=lambda h: h["ratio_to_boto3"],
            default=None,
        )
        web = r["handlers"].get("webhook")
        if web:
            rows.append(
                f"| cold_import webhook | {web['median_ms']} ms ({_x(web['ratio_to_boto3'])}) | import boto3 "
                f"{r['baseline']['median_ms']} ms | <= 1.3x | {_met(web['met'])} |"
            )
        if worst:
            others = all(h["met"] for n, h in r["handlers"].items() if n != "webhook")
            rows.append(
                f"| cold_import others (worst: `{worst['module']}`) | {worst['median_ms']} ms "
                f"({_x(worst['ratio_to_boto3'])}) | import boto3 {r['baseline']['median_ms']} ms | <= 2.0x "
                f"| {_met(others)} |"
            )
    r = results.get("webhook_latency") or {}
    if "handler" in r:
        rows.append(
            f"| webhook_latency p50 / p99 | {r['handler']['p50_ms']} / {r['handler']['p99_ms']} ms | "
            f"{r['baseline']['p50_ms']} / {r['baseline']['p99_ms']} ms | <= 1.5x | {_met(r['met'])} |"
        )
    r = results.get("aws_calls_per_message") or {}
    if "inbound" in r:
        rows.append(
            f"| aws_calls_per_message inbound | {r['inbound']['calls_per_message']} | "
            f"{r['baseline']['calls_per_message']} | <= {r['goal_inbound_calls_per_message']:g} | "
            f"{_met(r.get('inbound_met', r['met']))} |"
        )
        o, camp = r["outbound"], r.get("campaign")
        rows.append(
            f"| aws_calls_per_message outbound (single send + 3 statuses) | {o['calls_per_message']} | | "
            f"<= {o.get('goal_calls_per_message', 12):g} | {_met(o.get('met'))} |"
        )
        if camp:
            rows.append(
                f"| aws_calls_per_message campaign message + 3 statuses | {camp['calls_per_message']} | | "
                f"<= {camp['goal_calls_per_message']:g} | {_met(camp['met'])} |"
            )
        rows.append(f"| KMS calls per 1,000 inbound | {r['inbound']['kms_calls_per_1000_messages']} | | | |")
    r = results.get("dsr_scaling") or {}
    if "by_size" in r:
        top = r["by_size"][str(r["other_items"][-1])]
        base = r["baseline"]
        rows.append(
            f"| dsr_scaling at {r['other_items'][-1]:,} items: export / erase items read, ms | "
            f"{top['export']['items_read']} / {top['erase']['items_read']}, {top['export']['ms']} / "
            f"{top['erase']['ms']} ms | {base['export']['items_read']} / {base['erase']['items_read']}, "
            f"{base['export']['ms']} / {base['erase']['ms']} ms at {base['size']:,} | flat | "
            f"{_met(r['met'])} |"
        )
    r = results.get("sender_throughput") or {}
    if "msg_per_s_per_invocation" in r:
        dep = r["deployed"]
        rows.append(
            f"| sender_throughput at the deployed {dep['memory_mb']} MB ({dep['vcpu_share']} vCPU) | "
            f"{dep['msg_per_s_per_invocation']} msg/s per invocation (one core: "
            f"{r['msg_per_s_per_invocation']}) | bare Graph calls {r['baseline']['msg_per_s']} msg/s "
            f"| >= 50 | {_met(r['met'])} |"
        )
    r = results.get("aws_cost") or {}
    if "single_send" in r:
        fees = r["channel_fees_usd_per_1000"]
        single, camp = r["single_send"]["usd_per_1000"], r["campaign_message"]["usd_per_1000"]
        rows.append(
            f"| aws_cost per 1,000 messages: single send / campaign message | ${single} / ${camp} | "
            f"channel fee: Twilio ${fees['twilio']:g}, AWS End User Messaging Social "
            f"${fees['aws_end_user_messaging_social']:g} | <= ${r['goal_usd_per_1000']} | "
            f"{_met(r['single_send']['met'])} / {_met(r['campaign_message']['met'])} |"
        )
    r = results.get("campaign_pacing") or {}
    if "max_deviation" in r and isinstance(r["max_deviation"], int | float):
        rows.append(
            f"| campaign_pacing ({r['recipients']:,} recipients) worst 10 s window, duplicates, lost | "
            f"{r['max_deviation'] * 100:.1f}% off, {r['duplicates']}, {r['lost']} | configured "
            f"{r['configured_rate']}/s | <= 5%, 0, 0 | {_met(r['met'])} |"
        )
    r = results.get("synth_seconds") or {}
    if "seconds" in r:
        rows.append(f"| synth_seconds | {r['seconds']} s | minimal app {r['baseline']['seconds']} s | | |")
    return rows


def markdown(results: dict[str, Any]) -> str:
    m = results.get("machine", {})
    git = results.get("git", {})
    lines = [
        "# Performance",
        "",
        "<!-- Rendered by `make bench` (bench/render.py) from bench/results.json; do not edit by hand. -->",
        "",
        f"Measured {results.get('generated_at', '?')} at commit `{str(git.get('commit', '?'))[:12]}`"
        + (" (lambdas/ modified)" if git.get("dirty") else "")
        + f" on {m.get('platform', '?')}, {m.get('cpus', '?')} CPUs, Python {m.get('python', '?')}; load "
        "average "
        f"{m.get('load_average_at_start', '?')} at start, {m.get('load_average_at_end', '?')} at end."
        + (" **Quick run: sizes reduced, figures not comparable.**" if results.get("quick") else ""),
        "Every figure stands beside a baseline measured in the same run on the same machine, so the ratios "
        "carry over better than the absolute times (moto answers in-process, not over a network).",
        "",
        "## Summary",
        "",
        *_summary(results),
    ]
    for key, (title, render) in RENDERERS.items():
        r = results.get(key)
        lines += ["", f"## {title} (`{key}`)", ""]
        if not isinstance(r, dict):
            lines.append("Not measured in this run.")
        elif "error" in r:
            lines.append(f"Could not run: `{r['error']}`.")
        else:
            try:
                lines += render(r)
            except (KeyError, TypeError) as exc:
                lines.append(f"Incomplete results: `{exc}`.")
    lines += [
        "",
        "## Reproduce",
        "",
        "`make bench` (every section; several minutes, most of it filling moto with 1e5 items and two "
        "synths), or "
        "`.venv/bin/python -m bench.run --only SECTION[,SECTION]` to re-measure some and merge them in. "
        "The reliability suite (fuzzing, fault injection, PII in logs, soak) is `tests/reliability/`: "
        "`make test` runs its short profile, `make fuzz` the full one (20,000+ fuzz cases, 10,000-message "
        "soak).",
        "",
    ]
    return "\n".join(lines)
