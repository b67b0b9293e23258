"""The README and the documentation site: the README stays short, its copies of result tables are the
committed files, its links resolve, its result summary agrees with the committed results, and
`mkdocs build --strict` passes (pages quote results through snippets and docs/hooks.py)."""

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
MAX_README_LINES = 200
SYNC_COMMAND = "python docs/sync_readme.py"
# CI runs the README's test command; tests/test_pipeline.py quotes its DVC recipe.
README_COMMANDS = (
    "python -m pytest",
    "snakemake --cores all --configfile configs/smoke.yaml",
    "dvc exp show --drop '.*' --keep 'Experiment|pass1\\.(grpo|rrpo|srpo|oracle|demo|sft)$|gain|^rl\\.lr$'",
)


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def unfenced(text: str) -> str:
    """Markdown without its fenced code blocks."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def prose(text: str) -> str:
    """Markdown without code, fenced or inline (links there are not links)."""
    return re.sub(r"`[^`\n]*`", "", unfenced(text))


def github_slug(heading: str) -> str:
    heading = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", heading).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {github_slug(line.lstrip("#")) for line in unfenced(path.read_text()).splitlines() if line.startswith("#")}


def test_the_readme_is_short():
    n = len(README.read_text().splitlines())
    assert n <= MAX_README_LINES, f"README.md has {n} lines (at most {MAX_README_LINES}): move detail to docs/"


def test_the_readme_keeps_its_commands():
    text = README.read_text()
    assert [c for c in README_COMMANDS if c not in text] == []


def test_the_readme_include_blocks_are_the_committed_files():
    sync = load(REPO / "docs" / "sync_readme.py")
    text = README.read_text()
    blocks = [m["path"] for m in sync.BLOCK.finditer(text)]
    assert "results/tables/family.md" in blocks
    _, stale = sync.synced(text)
    assert stale == [], f"README.md's copy of {', '.join(stale)} differs from the file; run: {SYNC_COMMAND}"


def test_the_sync_tool_rewrites_a_stale_block():
    sync = load(REPO / "docs" / "sync_readme.py")
    stale_text = "intro\n<!-- include: results/tables/family.md -->\n| old | table |\n<!-- /include -->\nend\n"
    fixed, stale = sync.synced(stale_text)
    assert stale == ["results/tables/family.md"]
    assert (REPO / "results/tables/family.md").read_text().strip() in fixed
    assert fixed.startswith("intro\n") and fixed.endswith("<!-- /include -->\nend\n")
    assert sync.synced(fixed) == (fixed, [])


def test_every_relative_link_of_the_readme_resolves():
    text = prose(README.read_text())
    targets = re.findall(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text)
    targets += re.findall(r"<img[^>]+src=\"([^\"]+)\"", text)
    assert "results/plots/family.png" in targets and "docs/results.md" in targets
    broken = []
    for target in targets:
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, fragment = target.partition("#")
        file = REPO / path if path else README
        if not file.exists():
            broken.append(f"{target}: no file {path}")
        elif fragment and file.suffix == ".md" and fragment not in anchors(file):
            broken.append(f"{target}: no heading #{fragment} in {path or 'README.md'}")
    assert broken == []


def claims(path: str) -> dict:
    return {c["id"]: c for c in json.loads((REPO / path).read_text())}


def family() -> tuple[dict, dict]:
    data = json.loads((REPO / "results/tables/family.json").read_text())
    return {r["arm"]: r for r in data["rows"]}, {c["id"]: c for c in data["claims"]}


def gains(claim) -> bool:
    """The interval lies above 0 (a comparison without an interval shows no gain)."""
    return claim.get("ci_low") is not None and claim["ci_low"] > 0


# Each line of the README's result summary (words, no numbers), with what the committed results must
# show for it to stay true. A rerun that changes one fails here: rewrite that line (README.md, between
# the `result` markers; docs/index.md includes it), then this table.
SUMMARY = [
    ("The positive control (a reset into the task's own solution) beats GRPO per generated token",
     lambda c, rows, fc: gains(c["demo_vs_grpo"])),
    ("The exact-oracle reset beats GRPO too, and more with 8 suffixes per parent",
     lambda c, rows, fc: gains(c["oracle_vs_grpo"]) and gains(c["oracle_1x8_vs_grpo"])
     and c["oracle_1x8_vs_grpo"]["estimate"] > c["oracle_vs_grpo"]["estimate"]),
    ("SRPO and RRPO do not beat GRPO",
     lambda c, rows, fc: not any(gains(c[i]) for i in ("srpo_vs_grpo", "rrpo_vs_grpo", "srpo_vs_rrpo"))),
    ("the tiny model localizes its own errors no better than a random reset",
     lambda c, rows, fc: not gains(c["srpo_exact_vs_rrpo"])),
    ("VinePPO, exact process rewards and first-error credit gain nothing over GRPO",
     lambda c, rows, fc: not any(gains(rows[a]["auc"]) for a in ("vineppo", "process_oracle", "first_error_credit"))),
    ("resampling at the error is what pays",
     lambda c, rows, fc: gains(fc["oracle_vs_first_error_credit"])),
    ("The gains are per token, not per update: no arm ends measurably above GRPO",
     lambda c, rows, fc: not any(gains(v) for k, v in c.items() if k.endswith("_final") and v["baseline"] == "grpo")
     and not any(gains(r["final"]) for r in rows.values() if "final" in r)),
]


def test_the_readme_result_summary_agrees_with_the_committed_results():
    text = README.read_text()
    summary = text.split("[start:result]", 1)[1].split("[end:result]", 1)[0]
    assert not re.search(r"\d\.\d|\d%", summary), "the summary quotes no numbers: the table below it does"
    c, (rows, fc) = claims("results/claims.json"), family()
    missing = [line for line, _ in SUMMARY if line not in summary]
    assert missing == [], f"the README's result summary changed; update SUMMARY in tests/test_docs.py: {missing}"
    wrong = [line for line, holds in SUMMARY if not holds(c, rows, fc)]
    assert wrong == [], f"the committed results no longer support these README summary lines: {wrong}"


def test_the_hook_quotes_committed_json():
    pytest.importorskip("mkdocs", reason="needs requirements-docs.txt")
    hooks = load(REPO / "docs" / "hooks.py")
    claim = claims("results/claims.json")["demo_vs_grpo"]
    assert hooks.value("results/claims.json", "demo_vs_grpo") == (
        f"{claim['estimate']:+.3f} [{claim['ci_low']:+.3f}, {claim['ci_high']:+.3f}]")
    assert hooks.value("results/tables/family.json", "rows.vineppo.tokens", ",.0f").replace(",", "").isdigit()
    with pytest.raises(KeyError):
        hooks.value("results/claims.json", "no_such_claim")
    roots = [r.relative_to(REPO).as_posix() for r in hooks.study_roots()]
    assert roots[0] == "results" and "results/smollm2-135m" in roots


def test_the_site_builds_strict(tmp_path):
    for module in ("mkdocs", "material", "pymdownx"):
        pytest.importorskip(module, reason="needs requirements-docs.txt")
    site = tmp_path / "site"
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"),
                          "-d", str(site)], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    pages = {p.relative_to(site).as_posix(): p.read_text() for p in site.rglob("*.html")}
    assert [p for p, html in pages.items() if "[[" in html or "--8&lt;--" in html] == []
    results = pages["results/index.html"]
    assert "first_error_credit" in results and 'src="plots/family.png"' in results  # an included table, a figure
    assert (site / "results/plots/family.png").is_file() and "results/RESULTS/index.html" in pages
    assert "reproducible research pipeline" in pages["index.html"]  # the README's intro, included
