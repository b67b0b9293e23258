"""MkDocs hooks: publish the committed results beside the pages, and quote numbers from their JSON files.

1. `on_files` adds every committed study's results page (`results/RESULTS.md`,
   `results/NAME/RESULTS.md`) and figures (`results/plots/*.png`, `results/NAME/plots/*.png`) to the
   site under the same paths, read in place: no copy under docs/. A page links a figure as
   `results/plots/family.png`, and a results page's own relative links (`plots/x.png`) resolve as they
   do on GitHub. Scratch roots (a `.gitignore` of `*`: `results/smoke/`, overrides) are left out.
2. `on_page_markdown` replaces `[[FILE.json:KEY.KEY|FORMAT]]` with a value of a committed JSON file:
   `[[results/claims.json:demo_vs_grpo]]` -> `+0.149 [+0.092, +0.205]` (an object with estimate, ci_low
   and ci_high), `[[results/claims.json:demo_vs_grpo.mde]]` -> `0.075`. A key picks a dict entry, or in a
   list the item whose `id` or `arm` is that key (or an index). FORMAT is a Python format spec (default
   `.3f` for a number, `+.3f` for an interval). A missing file or key fails the build.

Tables come in whole through pymdownx.snippets (`--8<-- "results/tables/family.md"`, mkdocs.yml).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"
VALUE = re.compile(r"\[\[([\w./-]+\.json):([^\]|]+?)(?:\|([^\]]+))?\]\]")


def study_roots() -> list[Path]:
    """results/ and every results/NAME/ with a results page, less scratch roots (.gitignore of `*`)."""
    roots = [RESULTS] + sorted(p.parent for p in RESULTS.glob("*/RESULTS.md"))
    return [r for r in roots if not (r != RESULTS and (r / ".gitignore").is_file()
                                     and (r / ".gitignore").read_text().strip() == "*")]


def on_files(files: Files, config) -> Files:
    for root in study_roots():
        paths = [root / "RESULTS.md"] + sorted(root.glob("plots/*.png"))
        for path in paths:
            if path.is_file():
                files.append(File.generated(config, path.relative_to(REPO).as_posix(), abs_src_path=str(path)))
    return files


def _pick(node, key: str):
    if isinstance(node, dict):
        return node[key]
    if isinstance(node, list):
        for item in node:
            if isinstance(item, dict) and key in (item.get("id"), item.get("arm")):
                return item
        if key.isdigit():
            return node[int(key)]
    raise KeyError(key)


def _format(value, spec: str | None) -> str:
    if isinstance(value, dict) and {"estimate", "ci_low", "ci_high"} <= value.keys():
        spec = spec or "+.3f"
        return f"{value['estimate']:{spec}} [{value['ci_low']:{spec}}, {value['ci_high']:{spec}}]"
    if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
        spec = spec or "+.3f"
        return "[" + ", ".join(f"{v:{spec}}" for v in value) + "]"
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:{spec or '.3f'}}"
    if isinstance(value, int):
        return f"{value:{spec or ''}}"
    if isinstance(value, str) and not spec:
        return value
    raise TypeError(f"cannot format {type(value).__name__} with {spec!r}")


def value(path: str, keys: str, spec: str | None = None) -> str:
    """The text of one value of a committed JSON file (the `[[...]]` of a page)."""
    data = json.loads((REPO / path).read_text())
    for key in keys.strip().split("."):
        data = _pick(data, key)
    return _format(data, spec.strip() if spec else None)


def on_page_markdown(markdown: str, page, config, files) -> str:
    def substitute(match: re.Match) -> str:
        try:
            return value(*match.groups())
        except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
            raise PluginError(f"{page.file.src_uri}: {match.group(0)}: {type(e).__name__}: {e}") from None

    return VALUE.sub(substitute, markdown)
