"""Stage entry points fail on bad input with one clear line naming the file, line and key (no
traceback) and exit status 2, before any compute and without touching existing outputs."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

from resetrl.config import ParamsError
from resetrl.storage import DataError


def stage_entry(main: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(main)
    def guarded(*args, **kwargs) -> None:
        try:
            main(*args, **kwargs)
        except (ParamsError, DataError) as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)

    return guarded
