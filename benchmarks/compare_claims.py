"""Does a rerun elsewhere reproduce the study's conclusions? Compares two `results/claims.json` (the
committed study and a rerun of it: another machine, or other floating-point kernels on this one)
claim by claim: same verdict, the rerun's estimate inside the committed 95% interval, and whether
any verdict flipped between "reproduced" and "not reproduced". Writes JSON into results/benchmarks/.

    ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE snakemake --cores all --forceall   # in a scratch clone
    python benchmarks/compare_claims.py results/claims.json ../scratch/results/claims.json --label other-kernels
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from resetrl.core.storage import atomic_write_json

DEFINITE = {"reproduced", "not reproduced"}


def compare(committed: list[dict], rerun: list[dict]) -> dict:
    again = {c["id"]: c for c in rerun}
    rows = []
    for c in committed:
        r = again[c["id"]]
        rows.append({"id": c["id"], "committed": c["verdict"], "rerun": r["verdict"], "firm": c.get("firm"),
                     "estimate": c["estimate"], "ci": [c["ci_low"], c["ci_high"]], "rerun_estimate": r["estimate"],
                     "inside": c["ci_low"] <= r["estimate"] <= c["ci_high"]
                     if None not in (c["ci_low"], c["ci_high"], r["estimate"]) else None})
    return {"claims": len(rows),
            "same_verdict": sum(r["committed"] == r["rerun"] for r in rows),
            "estimate_inside_interval": sum(bool(r["inside"]) for r in rows),
            "opposite_flips": sum({r["committed"], r["rerun"]} == DEFINITE for r in rows),
            "firm": sum(bool(r["firm"]) for r in rows),
            "firm_changed": sum(bool(r["firm"]) and r["committed"] != r["rerun"] for r in rows),
            "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("committed", type=Path, help="the committed study's claims.json")
    parser.add_argument("rerun", type=Path, help="the rerun's claims.json")
    parser.add_argument("--label", default="rerun", help="names the output, results/benchmarks/claims_LABEL.json")
    args = parser.parse_args()
    out = compare(json.loads(args.committed.read_text()), json.loads(args.rerun.read_text()))
    atomic_write_json(Path("results/benchmarks") / f"claims_{args.label}.json", {"label": args.label, **out})
    for r in out["rows"]:
        mark = "" if r["committed"] == r["rerun"] else "   <- changed"
        firm = {True: "firm", False: "borderline", None: "-"}[r["firm"]]
        print(f"{r['id']:26s} {r['committed']:>15s} -> {r['rerun']:<15s} {firm:10s} inside: {r['inside']}{mark}")
    print(f"{out['same_verdict']}/{out['claims']} verdicts the same, {out['estimate_inside_interval']}/{out['claims']} "
          f"rerun estimates inside the committed 95% interval, {out['opposite_flips']} opposite flips, "
          f"{out['firm_changed']} of {out['firm']} firm verdicts changed")


if __name__ == "__main__":
    main()
