"""Stage entry points fail on bad input with one clear line naming the file, line and key (no
traceback) and exit status 2, before any compute and without touching existing outputs; an output
that cannot be written (no permission, a file in the way, a full disk, whichever library wrote it)
fails the same way, naming the output. Ctrl-C (SIGINT) stops a stage with one line and exit status
130 (the shell's for SIGINT); rerunning it resumes from its last checkpoint."""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from pathlib import Path

from resetrl.core.config import ParamsError
from resetrl.core.storage import DataError, final_name


def stage_entry(main: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(main)
    def guarded(*args, **kwargs) -> None:
        try:
            main(*args, **kwargs)
        except (ParamsError, DataError) as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        except OSError as error:
            where = f"{final_name(error.filename)}: " if error.filename else ""
            print(f"error: {where}{error.strerror or error}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print(f"interrupted: stage {Path(inspect.getfile(main)).stem} stopped; run it again to resume from "
                  "its last checkpoint", file=sys.stderr)
            sys.exit(130)

    return guarded
