#!/usr/bin/env python3
"""One command: generate a data set, then time `identify-loader run` (release)
and the DuckDB job in both its flavours (`duckdb_job.py`) alternately, and
print wall time and peak RSS per phase, the medians and our/DuckDB ratios,
the last against the faster flavour.

Ours is one `run` process, as a user runs it: its wall time and peak RSS are
the whole job's; its phases are split by the times it logs for building
identity_map and users (the rest is the load). DuckDB's phases are two
processes.

    benches/compare.py --events 1000000 --users 200000 [--runs 3] [--data DIR]

Needs /usr/bin/time, python3 with duckdb, and a release build (made here
unless --no-build). Figures go to stdout; nothing is asserted.
"""
import argparse
import glob
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "identify-loader")


def timed(cmd, env=None):
    """Runs cmd under /usr/bin/time -v; returns (wall seconds, peak RSS MiB, stderr)."""
    out = subprocess.run(["/usr/bin/time", "-v"] + cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out.stderr[-3000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", out.stderr).group(1)
    parts = [float(p) for p in wall.split(":")]
    seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr).group(1)) / 1024
    return seconds, rss, out.stderr


def duckdb_version():
    """The peer's version, which moves with PyPI: its speed moved with it (README)."""
    out = subprocess.run([sys.executable, "-c", "import duckdb; print(duckdb.__version__)"],
                         stdout=subprocess.PIPE, text=True)
    return out.stdout.strip() or "unknown"


def ours(data, wh, memory_limit):
    """One `run`: ((load s, peak MiB), (users s, peak MiB)); both phases show
    the process's peak, the only one there is."""
    env = dict(os.environ, RUST_LOG="identify_loader=info")
    wall, rss, log = timed([BIN, "run", "--input", data, "--warehouse", wh, "--memory-limit", memory_limit], env)
    log = re.sub(r"\x1b\[[0-9;]*m", "", log)
    built = re.findall(r'built table="\w+" rows=\d+ elapsed_s=([0-9.]+)', log)
    if len(built) != 2:
        sys.exit(f"expected the build times of identity_map and users in the log, found {len(built)}")
    users = sum(float(s) for s in built)
    return (wall - users, rss), (users, rss)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--users", type=int, default=200_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--data", default=None)
    p.add_argument("--memory-limit", default="2GiB")
    p.add_argument("--no-build", action="store_true")
    args = p.parse_args()
    data = args.data or os.path.join(tempfile.gettempdir(), f"identify-bench-{args.events}-{args.users}")
    if not os.path.isdir(data):
        print(f"generating {args.events} events for {args.users} users into {data}", flush=True)
        subprocess.run([sys.executable, os.path.join(ROOT, "benches", "generate.py"), "--events", str(args.events),
                        "--users", str(args.users), "--out", data], check=True)
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    files = sorted(glob.glob(os.path.join(data, "*", "*.gz")))
    compressed = sum(os.path.getsize(f) for f in files)
    floor, _, _ = timed(["sh", "-c", f"cat {' '.join(files)} | gzip -dc | wc -c > {data}.size"])
    raw = int(open(f"{data}.size").read())
    print(f"data: {len(files)} files, {compressed / 1e6:.0f} MB gzip, {raw / 1e6:.0f} MB NDJSON; "
          f"gzip -dc alone: {floor:.1f} s ({raw / 1e6 / floor:.0f} MB/s on one core); DuckDB {duckdb_version()}")

    peers = ["flat", "struct"]
    rows = {f"{who}_{phase}": [] for who in ["ours"] + peers for phase in ["load", "users"]}
    job = os.path.join(ROOT, "benches", "duckdb_job.py")
    for run in range(args.runs):
        wh = tempfile.mkdtemp(prefix="identify-wh-")
        load, users = ours(data, wh, args.memory_limit)
        rows["ours_load"].append(load)
        rows["ours_users"].append(users)
        shutil.rmtree(wh)
        for flavour in peers:
            wh = tempfile.mkdtemp(prefix="duck-wh-")
            flag = ["--flavour", flavour]
            rows[f"{flavour}_load"].append(
                timed([sys.executable, job, "load", os.path.join(data, "*", "*.gz"), wh] + flag)[:2])
            rows[f"{flavour}_users"].append(timed([sys.executable, job, "users", wh] + flag)[:2])
            shutil.rmtree(wh)
        print(f"run {run + 1}: " + ", ".join(f"{k} {v[-1][0]:.1f} s / {v[-1][1]:.0f} MiB" for k, v in rows.items()),
              flush=True)

    med = {k: (statistics.median(w for w, _ in v), max(r for _, r in v)) for k, v in rows.items()}
    total = {who: med[f"{who}_load"][0] + med[f"{who}_users"][0] for who in ["ours"] + peers}
    ours_total = total["ours"]
    print(f"\nmedians over {args.runs} runs ({args.events} events); DuckDB's jobs: "
          "flat (flattens traits at load), struct (keeps them as structs; unnests at users)")
    print(f"{'phase':<8}{'ours s':>8}{'flat s':>8}{'ratio':>7}{'struct s':>10}{'ratio':>7}"
          f"{'ours MiB':>10}{'flat MiB':>10}{'struct MiB':>12}")
    for phase in ["load", "users"]:
        o, f, s = med[f"ours_{phase}"], med[f"flat_{phase}"], med[f"struct_{phase}"]
        print(f"{phase:<8}{o[0]:>8.1f}{f[0]:>8.1f}{o[0] / f[0]:>7.2f}{s[0]:>10.1f}{o[0] / s[0]:>7.2f}"
              f"{'':>10}{f[1]:>10.0f}{s[1]:>12.0f}")
    print(f"{'total':<8}{ours_total:>8.1f}{total['flat']:>8.1f}{ours_total / total['flat']:>7.2f}"
          f"{total['struct']:>10.1f}{ours_total / total['struct']:>7.2f}{med['ours_load'][1]:>10.0f}")
    fastest = min(peers, key=total.get)
    print(f"against the faster DuckDB job ({fastest}): {ours_total / total[fastest]:.2f}")
    # This VM's speed moves within a run: each round's ratio beside the medians'.
    rounds = [(rows["ours_load"][i][0] + rows["ours_users"][i][0])
              / (rows[f"{fastest}_load"][i][0] + rows[f"{fastest}_users"][i][0]) for i in range(args.runs)]
    print(f"round by round against {fastest}: " + ", ".join(f"{r:.2f}" for r in rounds))
    print(f"load throughput: {raw / 1e6 / med['ours_load'][0]:.0f} MB/s of NDJSON "
          f"(decompression floor {raw / 1e6 / floor:.0f} MB/s per core); "
          f"{args.events / ours_total / 1e3:.0f}k events/s end to end")


if __name__ == "__main__":
    main()
