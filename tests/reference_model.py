#!/usr/bin/env python3
"""reference_model.py: an independent stdlib-only model of the whole demo outcome.

Mirrors the reference demo (random stream, provider decision, k-of-n quorum, suspect
scoring) without any qmesh code, and prints the outcome as JSON so tests can compare
the real mesh against it.

    python3 tests/reference_model.py --seed 7 --total 100 --byzantine PROVIDER_C
"""
import argparse
import hashlib
import hmac
import json
import random
import sys


def parse_domains(text):
    """'payments=0.55,identity=0.60' -> [('payments', 0.55), ('identity', 0.6)] in order."""
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"bad domain {part!r} (want name=threshold)")
        out.append((name.strip(), float(value)))
    if not out:
        raise ValueError(f"no domains in {text!r}")
    return out


def pick_byzantine(rng, providers, byzantine, byzantine_at, total):
    """The reference's pick_byzantine: provider first (unless named or 'none'), then index."""
    pid = (byzantine or "").strip()
    if pid == "none":
        pid = None
    elif pid not in providers:
        pid = rng.choice(list(providers))
    at_text = "" if byzantine_at is None else str(byzantine_at)
    if at_text.strip().isdigit():
        at = int(at_text)
    else:
        lo = max(1, int(total * 0.55))
        hi = max(lo + 1, int(total * 0.90))
        at = rng.randint(lo, hi)
    return pid, at


def score(secret, pid, domain, repr_bytes, context, expected):
    material = f"{pid}|{domain}|{repr_bytes.hex()}|{context}".encode()
    d = hmac.new(secret.encode(), material, hashlib.sha256).digest()
    n = int.from_bytes(d[:8], "big")
    s = (n % 10_000_000) / 10_000_000.0
    if context == expected:
        s += 0.15
    return min(s, 1.0)


def model(args):
    providers = [p.strip() for p in args.providers.split(",") if p.strip()]
    secrets = [s.strip() for s in args.secrets.split(",")]
    if len(secrets) != len(providers):
        raise ValueError("--secrets needs one secret per provider")
    secret_of = dict(zip(providers, secrets))
    domains = parse_domains(args.domains)
    thresholds = dict(domains)
    domain_names = [name for name, _ in domains]
    total = args.total

    rng = random.Random()
    rng.seed(args.seed)  # int: Python seeds with abs(n)
    byz, at = pick_byzantine(rng, providers, args.byzantine, args.byzantine_at, total)

    failover_at = args.failover_at if args.failover_at is not None else max(1, total // 2)

    initiations = {p: 0 for p in providers}
    by_domain = {p: {d: 0 for d in domain_names} for p in providers}
    disagreements = {p: 0 for p in providers}
    votes = {p: 0 for p in providers}
    successes = failures = 0
    relays = {"0": 0, "1": 0}

    for i in range(total):
        ctx = args.expected if rng.random() > 0.1 else "SPOOF"
        domain = rng.choice(domain_names)
        payload = f'{{"i":{i}}}'.encode()
        repr_bytes = hashlib.sha256(payload).digest()
        relays["0" if i < failover_at else "1"] += len(providers)

        decided = {}
        for p in providers:
            s = score(secret_of[p], p, domain, repr_bytes, ctx, args.expected)
            initiated = s >= thresholds.get(domain, args.default_threshold)
            if p == byz and i >= at:
                initiated = not initiated
            decided[p] = initiated
            if initiated:
                initiations[p] += 1
                by_domain[p][domain] += 1
        ok = sum(decided.values()) >= args.quorum
        if ok:
            successes += 1
        else:
            failures += 1
        for p in providers:
            votes[p] += 1
            if decided[p] != ok:
                disagreements[p] += 1

    def rate(p):
        return disagreements[p] / votes[p] if votes[p] else 0.0

    return {
        "flip_at": at,
        "byzantine": byz,
        "quorum_successes": successes,
        "quorum_failures": failures,
        "initiations": initiations,
        "initiations_by_domain": by_domain,
        "disagreements": disagreements,
        "votes": votes,
        "hub_relays": relays,
        "most_inconsistent": sorted(providers, key=rate, reverse=True)[0] if providers else None,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--total", type=int, default=100)
    ap.add_argument("--byzantine", default=None,
                    help='provider id, "none", or omitted to draw it from the seed')
    ap.add_argument("--byzantine-at", type=int, default=None, help="omitted: drawn")
    ap.add_argument("--failover-at", type=int, default=None, help="default max(1, N//2)")
    ap.add_argument("--quorum", type=int, default=2)
    ap.add_argument("--providers", default="PROVIDER_A,PROVIDER_B,PROVIDER_C")
    ap.add_argument("--secrets", default="A_KEY,B_KEY,C_KEY")
    ap.add_argument("--expected", default="CTX_ALPHA")
    ap.add_argument("--domains", default="payments=0.55,identity=0.60,storage=0.50")
    ap.add_argument("--default-threshold", type=float, default=0.60)
    args = ap.parse_args(argv)
    try:
        out = model(args)
    except ValueError as e:
        print(f"reference_model.py: {e}", file=sys.stderr)
        return 2
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
