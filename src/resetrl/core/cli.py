"""Stage entry points fail on bad input with one clear line naming the file, line and key (no
traceback) and exit status 2, before any compute and without touching existing outputs; an output
that cannot be written (no permission, a file in the way, a full disk) fails the same way, naming
the path."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

from resetrl.core.config import ParamsError
from resetrl.core.storage import DataError


def stage_entry(main: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(main)
    def guarded(*args, **kwargs) -> None:
        try:
            main(*args, **kwargs)
        except (ParamsError, DataError) as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        except OSError as error:
            where = f"{error.filename}: " if error.filename else ""
            print(f"error: {where}{error.strerror or error}", file=sys.stderr)
            sys.exit(2)

    return guarded
