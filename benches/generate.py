#!/usr/bin/env python3
"""Deterministic generator of realistic Segment-style event logs.

    generate.py --events N --users U --out DIR [--seed S] [--file-mb 100] [--days 7]

Writes gzip NDJSON files of about --file-mb MB uncompressed into one folder
per day (DIR/2024-03-DD/events-NNNN.json.gz). About 75% of the events are
identify calls (analytics.js shape: ~15 traits with nested address and
company, context, four timestamps, some anonymous-only), the rest track and
page calls. The same arguments always give the same bytes.
"""
import argparse
import gzip
import json
import os
import random

PLANS = ["free", "starter", "pro", "business", "enterprise"]
CITIES = ["London", "Paris", "Berlin", "Lisbon", "Austin", "Toronto", "Sydney", "Osaka"]
INDUSTRIES = ["Retail", "Media", "Finance", "Health", "Software", "Logistics"]
TITLES = ["Engineer", "Analyst", "Manager", "Designer", "Founder", "Marketer"]
AGENTS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
]
EVENTS = ["Signed Up", "Product Viewed", "Order Completed", "Plan Upgraded", "Invite Sent"]


def ts(day, seconds, micros):
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"2024-03-{day:02d}T{h:02d}:{m:02d}:{s:02d}.{micros // 1000:03d}Z"


def context(rng, user):
    return {
        "ip": f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        "library": {"name": "analytics.js", "version": "next-1.53.0"},
        "locale": rng.choice(["en-US", "en-GB", "fr-FR", "de-DE", "ja-JP"]),
        "page": {
            "path": f"/app/{rng.choice(['home', 'billing', 'settings', 'reports'])}",
            "referrer": "https://www.google.com/",
            "title": "Acme Analytics",
            "url": f"https://app.acme.io/u/{user}",
        },
        "userAgent": rng.choice(AGENTS),
        "campaign": {"source": rng.choice(["google", "newsletter", "twitter"]), "medium": "cpc"},
    }


def traits(rng, u):
    return {
        "email": f"user{u}@example{u % 97}.com",
        "firstName": f"First{u % 5000}",
        "lastName": f"Last{u % 7919}",
        "plan": rng.choice(PLANS),
        "createdAt": f"2023-{1 + u % 12:02d}-{1 + u % 28:02d}T10:00:00Z",
        "logins": rng.randint(1, 500),
        "score": round(rng.random() * 100, 2),
        "vip": rng.random() < 0.1,
        "title": rng.choice(TITLES),
        "phone": f"+1-555-{u % 10000:04d}",
        "avatar": f"https://cdn.acme.io/a/{u}.png",
        "age": 18 + u % 60,
        "address": {"street": f"{u % 999} Main St", "city": rng.choice(CITIES), "postalCode": f"{u % 99999:05d}", "country": "US"},
        "company": {"name": f"Company {u % 20000}", "industry": rng.choice(INDUSTRIES), "employee_count": rng.randint(1, 5000)},
    }


def event(rng, i, users, day):
    u = rng.randrange(users)
    kind = rng.random()
    seconds = rng.randrange(86400)
    micros = rng.randrange(1_000_000)
    original = ts(day, seconds, micros)
    base = {
        "anonymousId": f"anon-{u}-{u % 7}",
        "context": context(rng, u),
        "integrations": {},
        "messageId": f"ajs-next-{i:012d}",
        "originalTimestamp": original,
        "receivedAt": ts(day, min(seconds + 1, 86399), micros),
        "sentAt": ts(day, seconds, micros),
        "timestamp": original,
        "channel": "client",
        "version": 2,
    }
    if kind < 0.75:
        base["type"] = "identify"
        base["traits"] = traits(rng, u)
        if rng.random() >= 0.05:  # 5% anonymous-only identifies
            base["userId"] = f"user-{u}"
    elif kind < 0.9:
        base.update(type="track", userId=f"user-{u}", event=rng.choice(EVENTS), properties={"value": rng.randint(1, 100)})
    else:
        base.update(type="page", name="Dashboard", properties={"path": "/app/home"})
    return json.dumps(base, separators=(",", ":"))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, required=True)
    p.add_argument("--users", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--file-mb", type=int, default=100)
    p.add_argument("--days", type=int, default=7)
    args = p.parse_args()
    rng = random.Random(args.seed)
    per_day = -(-args.events // args.days)
    limit = args.file_mb * 1_000_000
    i = 0
    for d in range(args.days):
        day = 1 + d
        folder = os.path.join(args.out, f"2024-03-{day:02d}")
        os.makedirs(folder, exist_ok=True)
        n, part, size, out = 0, 0, 0, None
        while n < per_day and i < args.events:
            if out is None or size >= limit:
                if out:
                    out.close()
                out = gzip.open(os.path.join(folder, f"events-{part:04d}.json.gz"), "wt", compresslevel=6)
                part, size = part + 1, 0
            line = event(rng, i, args.users, day) + "\n"
            out.write(line)
            size += len(line)
            n, i = n + 1, i + 1
        if out:
            out.close()


if __name__ == "__main__":
    main()
