"""Stage commands: `--help` answers without loading torch (parsing comes first), and every flag says
what it does."""

import re
import subprocess
import sys

import pytest

from resetrl.stages import STAGES, stage_module

COMMANDS = sorted({stage_module(s) for s in STAGES} | {"resetrl.status", "resetrl.analysis.tabular"})


def undocumented_flags(help_text: str) -> list[str]:
    """Options of an argparse help page with no description (none on their line or the next)."""
    lines = help_text.splitlines()
    missing = []
    for i, line in enumerate(lines):
        match = re.match(r"^  (-[-\w]+(?:[ ,][^ ].*?)?)(?:\s{2,}(\S.*))?$", line)
        if not match or line.lstrip().startswith("-h, --help"):
            continue
        described = match.group(2) or (i + 1 < len(lines) and re.match(r"^ {4,}\S", lines[i + 1]))
        if not described:
            missing.append(match.group(1))
    return missing


def test_undocumented_flags_are_found():
    page = "options:\n  -h, --help  show\n  --data DATA\n  --seed SEED  seed of the draws\n  --out OUT\n        where\n"
    assert undocumented_flags(page) == ["--data DATA"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_is_instant_and_complete(command):
    probe = (f"import sys; sys.argv = ['{command}', '--help']; import runpy\n"
             f"try: runpy.run_module('{command}', run_name='__main__')\n"
             "except SystemExit: pass\n"
             "assert 'torch' not in sys.modules, 'torch loaded before the arguments were parsed'")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout and undocumented_flags(proc.stdout) == [], proc.stdout
