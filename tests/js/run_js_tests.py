#!/usr/bin/env python3
"""Run the transformers.js tests in this folder with pytest.

When node or the npm packages of package.json are missing, print the reason and
exit with SKIP_EXIT_CODE, which CMakeLists.txt declares as ctest's SKIP_RETURN_CODE,
so that ctest reports the test as skipped and not as failed. Arguments are passed
on to pytest.
"""

from __future__ import annotations

import sys

from node_setup import JS_DIR, missing_prerequisite

SKIP_EXIT_CODE = 77


def main(argv: list[str]) -> int:
    reason = missing_prerequisite()
    if reason is not None:
        print(f"skipped: {reason}", flush=True)
        return SKIP_EXIT_CODE

    import pytest

    return int(pytest.main(["-q", str(JS_DIR), *argv]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
