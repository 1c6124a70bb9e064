#!/usr/bin/env python3
"""Counts an Okta org's users per status with the official Okta Python SDK.

This is the "custom script" an administrator would otherwise write for the User Status
Report, kept as plain as the SDK's documentation suggests, and used by
scripts/bench_report.sh as the baseline flowkit is compared with:

* the plain list (`GET /api/v1/users`), which leaves out DEPROVISIONED users, then
  `filter=status eq "DEPROVISIONED"` for those;
* pages of 200 (Okta's maximum), the next cursor read from each answer's Link header with
  the SDK's `PaginationHelper.extract_next_cursor(resp.headers)` (3.x answers an
  `ApiResponse`, which has no `has_next()`);
* counts kept in a dict, one pass, nothing stored.

Settings come from the environment as for every Okta SDK: OKTA_CLIENT_ORGURL,
OKTA_CLIENT_TOKEN, and OKTA_TESTING_TESTINGDISABLEHTTPSCHECK=true for a local http://
simulator. Needs `pip install okta==3.4.6` (tested with that version).

Prints one JSON line: {"users": N, "seconds": S, "pages": P, "counts": {...}}.
"""

import asyncio
import json
import os
import sys
import time
from collections import Counter

from okta.client import Client as OktaClient
from okta.pagination import PaginationHelper


def status_of(user):
    status = getattr(user, "status", None)
    # The SDK returns an enum (UserStatus.ACTIVE) whose value is Okta's spelling.
    return getattr(status, "value", None) or str(status)


async def count_users(client, counts, **query):
    """Adds the users of one listing to `counts`; returns the number of pages."""
    pages = 0
    after = None
    while True:
        users, resp, err = await client.list_users(limit=200, after=after, **query)
        if err:
            raise RuntimeError(f"list_users({query}) page {pages + 1} failed: {err}")
        pages += 1
        counts.update(status_of(u) for u in users)
        # SDK 3.x answers an ApiResponse; the next page's cursor is in its Link header.
        after = PaginationHelper.extract_next_cursor(resp.headers or {})
        if after is None:
            return pages


async def main():
    for name in ("OKTA_CLIENT_ORGURL", "OKTA_CLIENT_TOKEN"):
        if not os.environ.get(name):
            sys.exit(f"python_sdk_count.py: set {name}")
    # The SDK reads orgUrl, token and testing.testingDisableHttpsCheck from the environment.
    client = OktaClient({})
    counts = Counter()
    started = time.monotonic()
    pages = await count_users(client, counts)  # everyone but DEPROVISIONED
    pages += await count_users(client, counts, filter='status eq "DEPROVISIONED"')
    seconds = time.monotonic() - started
    print(
        json.dumps(
            {
                "users": sum(counts.values()),
                "seconds": round(seconds, 3),
                "pages": pages,
                "counts": dict(sorted(counts.items())),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
