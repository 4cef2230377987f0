"""How well mining's cheap cosmetic check agrees with the label stage's exact one.

    python bench/bench_cosmetic.py REPO_PATH DATA_DIR [--sample 1500] [--seed 0] [--list]

DATA_DIR holds a dataset mined from REPO_PATH (``diffrisk mine``). The candidates are the
modified Python files (``.py``, ``.pyi``; test files included) that add lines of code
and whose diff keeps its operators and keywords: the files mining judges. For each, the
cheap check (``diffrisk.mining.mine.cosmetic_values``: the statements around the hunks, in two
processes) and the exact one (``diffrisk.features.cosmetic.cosmetic_change``, both versions parsed
whole, as SZZ looks through a change) are run, and the pairs of answers counted:
``(exact, cheap)``, where None is "not cosmetic". ``--sample`` draws that many
candidates (0: all), ``--list`` prints the file changes where the two differ. Numbers
in docs/mining.md.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import time

import pandas as pd

from diffrisk.features.codelines import added_code_lines
from diffrisk.features.cosmetic import cosmetic_change, is_python_path
from diffrisk.git.repo import CatFile, open_repo
from diffrisk.mining.mine import cosmetic_values


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("repo")
    ap.add_argument("data_dir")
    ap.add_argument("--sample", type=int, default=1500, help="candidates drawn (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--list", action="store_true", help="print the disagreements")
    args = ap.parse_args()

    repo = open_repo(args.repo, allow_shallow=True)
    cols = ["sha", "path", "status", "blob_before", "blob_after"]
    files = pd.read_parquet(f"{args.data_dir}/files.parquet", columns=cols)
    counts = added_code_lines(repo, list(pd.unique(files["sha"])), [".py", ".pyi"])
    rows = files.to_dict("records")

    def candidate(r: dict) -> bool:
        got = counts.get(r["sha"], {}).get(r["path"])
        return (
            got is not None
            and got[0] > 0
            and got.same_words
            and r["status"] == "M"
            and is_python_path(r["path"])
            and isinstance(r["blob_before"], str)
            and isinstance(r["blob_after"], str)
            and r["blob_before"] != r["blob_after"]
        )

    todo = [r for r in rows if candidate(r)]
    total = len(todo)
    if args.sample and args.sample < total:
        todo = random.Random(args.seed).sample(todo, args.sample)
    with CatFile(repo) as cat:
        t0 = time.perf_counter()
        cheap = cosmetic_values(todo, counts, cat.read, workers=2)
        t_cheap = time.perf_counter() - t0
        pairs: collections.Counter[tuple[str | None, str | None]] = collections.Counter()
        differ = []
        t_exact = 0.0
        for r, q in zip(todo, cheap, strict=True):
            before, after = cat.read(r["blob_before"]), cat.read(r["blob_after"])
            if before is None or after is None:
                continue
            t0 = time.perf_counter()
            e = cosmetic_change(before, after, exact=True)
            t_exact += time.perf_counter() - t0
            pairs[(e, q)] += 1
            if e != q:
                differ.append((r["sha"][:10], r["path"], e, q))
    exact_yes = sum(n for (e, _), n in pairs.items() if e is not None)
    out = {
        "candidates": total,
        "checked": len(todo),
        "cosmetic_exact": exact_yes,
        "marked_not_cosmetic": sum(n for (e, q), n in pairs.items() if e is None and q),
        "cosmetic_not_marked": sum(n for (e, q), n in pairs.items() if e and q is None),
        "other_kind": sum(n for (e, q), n in pairs.items() if e and q and e != q),
        "pairs": {f"{e}/{q}": n for (e, q), n in sorted(pairs.items(), key=str)},
        "cheap_seconds_2_processes": round(t_cheap, 1),
        "exact_seconds_1_process": round(t_exact, 1),
    }
    print(json.dumps(out, indent=2))
    if args.list:
        for d in differ:
            print(*d)


if __name__ == "__main__":
    main()
