#!/usr/bin/env python3
"""Dollars per million messages and the capacity plan, from measured per-operation costs.

Reads the JSON `cruddur-bench --suite cost` writes (target/bench/costs.json; `make bench`
or `scripts/bench.sh --suite cost`) and template.yaml (memory sizes, architecture, stream
batch settings), and prints the Markdown of docs/BENCHMARKS.md's cost section and of
docs/CAPACITY.md's tables:

    scripts/capacity.py [--costs target/bench/costs.json] [--template template.yaml]
                        [--section cost|capacity|all]

Every price and assumption is a constant below, named and sourced, so a changed price, a
changed assumption or a new measurement is one re-run. Standard library only.
"""

import argparse
import json
import math
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# --- Prices: us-east-1, on-demand, list prices as read on 2026-12-01 from the pages named.
PRICES_SOURCE = (
    "us-east-1 list prices: DynamoDB https://aws.amazon.com/dynamodb/pricing/on-demand/ "
    "(on-demand rates in force since the 2024-11-01 price cut), Lambda "
    "https://aws.amazon.com/lambda/pricing/, API Gateway https://aws.amazon.com/api-gateway/pricing/ "
    "(first volume tier)"
)
WRU = 0.625 / 1e6  # $ per write request unit
RRU = 0.125 / 1e6  # $ per read request unit
STORAGE_GB_MONTH = 0.25  # $ per GB-month beyond the free 25 GB (Standard table class)
# Lambda triggers' GetRecords on the table's stream are free ("DynamoDB Streams" on the
# on-demand pricing page); both consumers read through Lambda.
LAMBDA_GB_S = {"arm64": 0.0000133334, "x86_64": 0.0000166667}
LAMBDA_REQUEST = 0.20 / 1e6
HTTP_API_REQUEST = 1.00 / 1e6  # first 300 million a month
WS_MESSAGE = 1.00 / 1e6  # first billion a month, per 32 KB
WS_CONNECTION_MINUTE = 0.25 / 1e6

# --- Assumptions of the capacity plan (docs/CAPACITY.md says why each).
TIERS = [10_000, 1_000_000, 10_000_000]  # daily active users
MESSAGES_PER_USER_DAY = 20
DIRECT_SHARE = 0.7  # of messages; the rest go to groups
GROUP10_SHARE_OF_GROUP = 0.8  # group messages in 10-member groups; the rest in 50-member ones
INBOX_PAGES_PER_USER_DAY = 10
CONVERSATION_OPENS_PER_USER_DAY = 15  # newest page, which marks read
EXPLICIT_READS_PER_USER_DAY = 2  # POST .../read
GROUPS_CREATED_PER_USER_DAY = 0.02  # one group a user every 50 days, 10 members
MEMBERSHIP_CHANGES_PER_USER_DAY = 0.02  # adds and leaves, each
SESSIONS_PER_USER_DAY = 3  # WebSocket connections (authorizer, $connect, $disconnect)
CONNECTED_MINUTES_PER_USER_DAY = 60
ONLINE_SHARE = CONNECTED_MINUTES_PER_USER_DAY / (16 * 60)  # of a conversation's members, when a message comes
PEAK_TO_AVERAGE = 3.0  # busiest hour's rate over the day's average
MESSAGE_ITEM_BYTES = 420  # a message item with a 90-byte text (from the bench's items)
ROW_ITEM_BYTES = 700  # an inbox row with unread counts
MONTH_DAYS = 30.4

# --- Limits (AWS defaults; docs/CAPACITY.md cites each page).
PARTITION_RRU = 3000
PARTITION_WRU = 1000
TABLE_ON_DEMAND_MAX = 40_000  # default per-table on-demand throughput quota, each of RRU and WRU
LAMBDA_ACCOUNT_CONCURRENCY = 1000
HTTP_API_RPS = 10_000  # account-level throttle per region
WS_NEW_CONNECTIONS_PER_S = 500
# Conversations a consumer's invocation works on at once (functions::inbox_rows and
# functions::push DEFAULT_CONCURRENCY).
STREAM_CONVERSATIONS_AT_ONCE = 16
PUSH_CONVERSATIONS_AT_ONCE = 8


def template_settings(path):
    """Memory per function (by Handler), the architecture default, stream batch settings."""
    text = Path(path).read_text()
    global_memory = int(re.search(r"^Globals:.*?^\s+MemorySize:\s*(\d+)", text, re.S | re.M).group(1))
    arch = re.search(r"^  Architecture:.*?Default:\s*(\S+)", text, re.S | re.M).group(1)
    memory = {}
    for block in re.split(r"\n  [A-Za-z0-9]+:\n    Type: ", text):
        if not block.startswith("AWS::Serverless::Function"):
            continue
        handler = re.search(r"^\s+Handler:\s*(\S+)", block, re.M)
        if not handler:
            continue
        own = re.search(r"^\s{6}MemorySize:\s*(\d+)", block, re.M)
        memory[handler.group(1)] = int(own.group(1)) if own else global_memory
        factor = re.search(r"ParallelizationFactor:\s*(\d+)", block)
        memory[handler.group(1) + ":parallelization"] = int(factor.group(1)) if factor else 1
    return memory, arch


class Costs:
    def __init__(self, costs_path, template_path):
        self.doc = json.loads(Path(costs_path).read_text())
        self.ops = self.doc["operations"]
        self.memory, self.arch = template_settings(template_path)

    def op(self, key):
        return self.ops[key]

    def lambda_gb_s(self, key):
        op = self.ops[key]
        # Billed per invocation, rounded up to the millisecond.
        return self.memory[op["function"]] / 1024 * math.ceil(op["mean_ms"]) / 1000

    def message(self, size):
        """One message's operations in a conversation of `size`: (send, fan-out, push)."""
        suffix = {2: "direct", 10: "group10", 50: "group50"}[size]
        return [f"send_{suffix}", f"fanout_{suffix}", f"push_{suffix}"]

    def dollars(self, keys, frames_scale=1.0, http=1):
        rru = sum(self.ops[k]["rru"] for k in keys)
        wru = sum(self.ops[k]["wru"] for k in keys)
        gb_s = sum(self.lambda_gb_s(k) for k in keys)
        frames = sum(self.ops[k]["frames"] for k in keys) * frames_scale
        return {
            "rru": rru,
            "wru": wru,
            "dynamodb": rru * RRU + wru * WRU,
            "lambda": gb_s * LAMBDA_GB_S[self.arch] + len(keys) * LAMBDA_REQUEST,
            "gb_s": gb_s,
            "http": http * HTTP_API_REQUEST,
            "frames": frames,
            "websocket": frames * WS_MESSAGE,
        }


def item_bytes(attributes):
    return sum(len(name) + len(value) for name, value in attributes.items())


def original_message(members):
    """The original system's units for one message (an estimate from its code, seeds/002):
    PutItem of the message; its stream Lambda Queries the group index (eventually
    consistent) and, per row, DeleteItem and PutItem; every row is in the index."""
    uuid, ts, text = "x" * 36, "2026-12-01T03:00:00.000000+00:00", "x" * 90
    message = item_bytes({"pk": "MSG#" + uuid, "sk": ts, "message": text, "message_uuid": uuid,
                          "user_uuid": uuid, "user_display_name": "Andrew Brown", "user_handle": "andrewbrown"})
    row = item_bytes({"pk": "GRP#" + uuid, "sk": ts, "message_group_uuid": uuid, "message": text,
                      "user_uuid": uuid, "user_display_name": "Andrew Brown", "user_handle": "andrewbrown"})
    per_kb = lambda b: max(1, math.ceil(b / 1024))
    wru = per_kb(message) + members * 2 * (per_kb(row) + per_kb(row))  # delete + put, table + index
    rru = 0.5 * max(1, math.ceil(members * row / 4096))
    return {"rru": rru, "wru": wru, "dynamodb": rru * RRU + wru * WRU, "message_bytes": message, "row_bytes": row}


def money(x):
    return f"${x:,.2f}"


def cost_section(c):
    out = []
    out.append("| per million messages | direct | 10-member group | 50-member group |")
    out.append("|---|---:|---:|---:|")
    rows = {size: c.dollars(c.message(size)) for size in (2, 10, 50)}
    def line(label, f):
        out.append(f"| {label} | " + " | ".join(f(rows[s]) for s in (2, 10, 50)) + " |")
    line("DynamoDB read request units", lambda r: f"{r['rru'] * 1e6:,.0f}")
    line("DynamoDB write request units", lambda r: f"{r['wru'] * 1e6:,.0f}")
    line("DynamoDB", lambda r: money(r["dynamodb"] * 1e6))
    line(f"Lambda ({c.arch}: 3 invocations, GB-s at measured time)", lambda r: money(r["lambda"] * 1e6))
    line("API Gateway HTTP (the POST)", lambda r: money(r["http"] * 1e6))
    line("WebSocket frames (every member connected once)", lambda r: money(r["websocket"] * 1e6))
    line("**total**", lambda r: "**" + money((r["dynamodb"] + r["lambda"] + r["http"] + r["websocket"]) * 1e6) + "**")
    originals = {2: original_message(2), 10: original_message(10), 50: original_message(50)}
    out.append("| original system, DynamoDB only (estimate from its code) | " + " | ".join(
        f"{money(originals[s]['dynamodb'] * 1e6)} ({originals[s]['wru']:.0f} WRU, {originals[s]['rru']:.1f} RRU)"
        for s in (2, 10, 50)) + " |")
    out.append("")
    out.append("Per message, by function (measured units; Lambda time is the handler's mean on DynamoDB Local):")
    out.append("")
    out.append("| operation | function | memory MB | mean ms | GB-s | RRU | WRU | frames |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|")
    for size in (2, 10, 50):
        for key in c.message(size):
            op = c.op(key)
            out.append(f"| {op['label']} | `{op['function']}` | {c.memory[op['function']]} | {op['mean_ms']:.1f} | "
                       f"{c.lambda_gb_s(key):.4f} | {op['rru']:.2f} | {op['wru']:.2f} | {op['frames']:.0f} |")
    return "\n".join(out)


def daily_operations():
    """Operations per daily active user per day, as (operation key, count)."""
    group = 1 - DIRECT_SHARE
    ops = []
    for size, share in ((2, DIRECT_SHARE), (10, group * GROUP10_SHARE_OF_GROUP), (50, group * (1 - GROUP10_SHARE_OF_GROUP))):
        suffix = {2: "direct", 10: "group10", 50: "group50"}[size]
        for kind in ("send", "fanout", "push"):
            ops.append((f"{kind}_{suffix}", MESSAGES_PER_USER_DAY * share))
    ops += [
        ("inbox_page", INBOX_PAGES_PER_USER_DAY),
        ("messages_page", CONVERSATION_OPENS_PER_USER_DAY),
        ("mark_read", EXPLICIT_READS_PER_USER_DAY),
        ("create_group10", GROUPS_CREATED_PER_USER_DAY),
        ("add_member", MEMBERSHIP_CHANGES_PER_USER_DAY),
        ("leave_group", MEMBERSHIP_CHANGES_PER_USER_DAY),
        ("authorize", SESSIONS_PER_USER_DAY),
        ("connect", SESSIONS_PER_USER_DAY),
        ("disconnect", SESSIONS_PER_USER_DAY),
    ]
    return ops


HTTP_OPS = {"send_direct", "send_group10", "send_group50", "inbox_page", "messages_page", "mark_read",
            "create_group10", "add_member", "leave_group"}


def capacity_section(c):
    day = 86_400
    ops = daily_operations()
    stream_pf = c.memory.get("messaging-stream:parallelization", 1)
    push_pf = c.memory.get("messaging-push:parallelization", 1)
    header = "| | " + " | ".join(f"{d:,} daily users" for d in TIERS) + " |"
    out = [header, "|---|" + "---:|" * len(TIERS)]
    results = []
    for dau in TIERS:
        r = {"dau": dau}
        per_s = {k: dau * n / day for k, n in ops}
        msgs_day = dau * MESSAGES_PER_USER_DAY
        r["msgs_day"] = msgs_day
        r["peak_msgs"] = msgs_day / day * PEAK_TO_AVERAGE
        r["peak_rru"] = sum(rate * c.op(k)["rru"] for k, rate in per_s.items()) * PEAK_TO_AVERAGE
        r["peak_wru"] = sum(rate * c.op(k)["wru"] for k, rate in per_s.items()) * PEAK_TO_AVERAGE
        r["peak_index_wru"] = sum(rate * c.op(k)["index_wru"] for k, rate in per_s.items()) * PEAK_TO_AVERAGE
        # Stream shards follow the table's partitions (one per partition); a partition
        # serves 3,000 RRU and 1,000 WRU.
        r["shards"] = max(1, math.ceil(r["peak_rru"] / PARTITION_RRU + r["peak_wru"] / PARTITION_WRU))
        # Each shard feeds one invocation of each consumer at a time (times the
        # parallelization factor), which works on N conversations at once: the share of
        # that invocation's time a shard's peak traffic needs. Above 1, the stream falls
        # behind.
        per_shard = {k: per_s[k] * PEAK_TO_AVERAGE / r["shards"] for k in per_s}
        def busy(fn, at_once, factor):
            keys = [k for k, _ in ops if c.op(k)["function"] == fn]
            return sum(per_shard[k] * c.op(k)["mean_ms"] / 1000 for k in keys) / (at_once * factor)
        r["stream_busy"] = busy("messaging-stream", STREAM_CONVERSATIONS_AT_ONCE, stream_pf)
        r["push_busy"] = busy("messaging-push", PUSH_CONVERSATIONS_AT_ONCE, push_pf)
        consumers = {"messaging-stream", "messaging-push"}
        r["api_conc"] = sum(per_s[k] * PEAK_TO_AVERAGE * c.op(k)["mean_ms"] / 1000
                            for k in per_s if c.op(k)["function"] not in consumers)
        r["lambda_conc"] = r["api_conc"] + r["shards"] * (stream_pf + push_pf)
        month = MONTH_DAYS
        http_month = sum(dau * n for k, n in ops if k in HTTP_OPS) * month
        frames_month = sum(dau * n * c.op(k)["frames"] for k, n in ops) * ONLINE_SHARE * month
        ws_in_month = dau * SESSIONS_PER_USER_DAY * 2 * month  # $connect and $disconnect
        minutes_month = dau * CONNECTED_MINUTES_PER_USER_DAY * month
        r["http_month"], r["frames_month"], r["minutes_month"] = http_month, frames_month, minutes_month
        r["peak_http_rps"] = sum(dau * n for k, n in ops if k in HTTP_OPS) / day * PEAK_TO_AVERAGE
        r["peak_connects"] = dau * SESSIONS_PER_USER_DAY / day * PEAK_TO_AVERAGE
        rru_month = sum(dau * n * c.op(k)["rru"] for k, n in ops) * month
        wru_month = sum(dau * n * c.op(k)["wru"] for k, n in ops) * month
        storage_gb = msgs_day * month * MESSAGE_ITEM_BYTES / 1e9 + dau * 40 * ROW_ITEM_BYTES * 2 / 1e9
        gb_s = sum(dau * n * c.lambda_gb_s(k) for k, n in ops) * month
        invocations = sum(dau * n for k, n in ops) * month
        r["bill"] = {
            "DynamoDB requests": rru_month * RRU + wru_month * WRU,
            "DynamoDB storage (after a month)": max(0.0, storage_gb - 25) * STORAGE_GB_MONTH,
            "Lambda": gb_s * LAMBDA_GB_S[c.arch] + invocations * LAMBDA_REQUEST,
            "API Gateway HTTP": http_month * HTTP_API_REQUEST,
            "API Gateway WebSocket": (frames_month + ws_in_month) * WS_MESSAGE + minutes_month * WS_CONNECTION_MINUTE,
        }
        r["storage_gb"] = storage_gb
        results.append(r)

    def row(label, f):
        out.append(f"| {label} | " + " | ".join(f(r) for r in results) + " |")

    row("messages a day", lambda r: f"{r['msgs_day']:,.0f}")
    row("peak messages/s", lambda r: f"{r['peak_msgs']:,.1f}")
    row("peak read units/s (RRU)", lambda r: f"{r['peak_rru']:,.0f}")
    row("peak write units/s (WRU), of it the group index", lambda r: f"{r['peak_wru']:,.0f} ({r['peak_index_wru']:,.0f})")
    row("stream shards (≈ table partitions)", lambda r: f"{r['shards']:,}")
    row(f"Lambda concurrency of each stream consumer (shards × parallelization {stream_pf}/{push_pf})",
        lambda r: f"{r['shards'] * stream_pf:,} / {r['shards'] * push_pf:,}")
    row(f"busy share of a shard's messaging-stream invocation at peak ({STREAM_CONVERSATIONS_AT_ONCE} conversations at once)",
        lambda r: f"{r['stream_busy']:.0%}")
    row(f"busy share of a shard's messaging-push invocation at peak ({PUSH_CONVERSATIONS_AT_ONCE} at once)",
        lambda r: f"{r['push_busy']:.0%}")
    row("API and WebSocket functions' concurrency at peak", lambda r: f"{r['api_conc']:,.1f}")
    row("HTTP API requests a month (peak/s)", lambda r: f"{r['http_month']:,.0f} ({r['peak_http_rps']:,.0f})")
    row("WebSocket frames pushed a month", lambda r: f"{r['frames_month']:,.0f}")
    row("WebSocket connection minutes a month (peak connects/s)", lambda r: f"{r['minutes_month']:,.0f} ({r['peak_connects']:,.1f})")
    for service in results[0]["bill"]:
        row(f"{service}, $/month", lambda r, s=service: money(r["bill"][s]))
    row("**total, $/month**", lambda r: "**" + money(sum(r["bill"].values())) + "**")
    row("**$ per daily user per month**", lambda r: "**" + f"${sum(r['bill'].values()) / r['dau']:.4f}" + "**")
    out.append("")
    out.append("Load against the default limits at peak (the largest share is the first limit met):")
    out.append("")
    out.append("| limit | " + " | ".join(f"{d:,}" for d in TIERS) + " |")
    out.append("|---|" + "---:|" * len(TIERS))
    limits = [
        (f"table write units/s vs on-demand table maximum {TABLE_ON_DEMAND_MAX:,}", lambda r: r["peak_wru"] / TABLE_ON_DEMAND_MAX),
        (f"table read units/s vs {TABLE_ON_DEMAND_MAX:,}", lambda r: r["peak_rru"] / TABLE_ON_DEMAND_MAX),
        (f"Lambda concurrency vs the account's {LAMBDA_ACCOUNT_CONCURRENCY:,}", lambda r: r["lambda_conc"] / LAMBDA_ACCOUNT_CONCURRENCY),
        (f"HTTP API requests/s vs {HTTP_API_RPS:,}", lambda r: r["peak_http_rps"] / HTTP_API_RPS),
        (f"WebSocket new connections/s vs {WS_NEW_CONNECTIONS_PER_S}", lambda r: r["peak_connects"] / WS_NEW_CONNECTIONS_PER_S),
        ("a shard's messaging-stream invocation", lambda r: r["stream_busy"]),
        ("a shard's messaging-push invocation", lambda r: r["push_busy"]),
    ]
    for label, share in limits:
        out.append(f"| {label} | " + " | ".join(f"{share(r):.0%}" for r in results) + " |")
    out.append("| **first limit met** | " + " | ".join(max(limits, key=lambda l: l[1](r))[0].split(" vs ")[0] for r in results) + " |")
    out.append("")
    out.append(hot_partitions(c))
    return "\n".join(out)


def hot_partitions(c):
    """Per-partition load of the hottest keys, per message/s in them, against the limits."""
    out = ["| partition | what one message costs there | messages/s it takes to reach the partition limit |",
           "|---|---|---:|"]
    fan50 = c.op("fanout_group50")
    # A 50-member group's MSG#: the message put (the membership check is on MBR#).
    msg_w = 2.0
    out.append(f"| `MSG#<busy group>` (table) | {msg_w:.0f} WRU (the message, transactional) | {PARTITION_WRU / msg_w:,.0f} |")
    idx_w = fan50["index_wru"]
    out.append(f"| the group index's partition of that group (`message_group_uuid`) | {idx_w:.0f} WRU (50 rows deleted and put) | {PARTITION_WRU / idx_w:,.1f} |")
    # The push's strongly consistent Query of 50 small memberships (under 4 KB): 1 RRU; the
    # append's ConditionCheck on the sender's membership: 2 WRU.
    out.append(f"| `MBR#<busy group>` | 1 RRU (the push reads the members) and 2 WRU (the append checks the sender's membership) | {PARTITION_RRU / 1:,.0f} (reads); {PARTITION_WRU / 2:,.0f} (checks) |")
    # One inbox row (under 1 KB) moved: a delete and a put, 2 WRU each in a transaction.
    out.append(f"| `GRP#<heavy user>` | 4 WRU (the user's row moved: delete and put, transactional) | {PARTITION_WRU / 4:,.0f} (messages/s across all of the user's conversations) |")
    out.append(f"| `CONN#<heavy user>` | 1 RRU (the push's strongly consistent Query) | {PARTITION_RRU / 1:,.0f} (messages/s across all of the user's conversations) |")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--costs", default=str(ROOT / "target/bench/costs.json"))
    parser.add_argument("--template", default=str(ROOT / "template.yaml"))
    parser.add_argument("--section", choices=["cost", "capacity", "all"], default="all")
    args = parser.parse_args()
    if not Path(args.costs).exists():
        sys.exit(f"{args.costs} not found: run `scripts/bench.sh --suite cost` first")
    c = Costs(args.costs, args.template)
    print(f"<!-- scripts/capacity.py over {args.costs}, measured {c.doc['measured_at']}; {PRICES_SOURCE} -->\n")
    if args.section in ("cost", "all"):
        print(cost_section(c))
        print()
    if args.section in ("capacity", "all"):
        print(capacity_section(c))


if __name__ == "__main__":
    main()
