"""The ``egi`` command installed with the package: the same command as the Rust binary."""

import os
import shutil
import sys


def main() -> None:
    from ._egi import run_cli

    # `egi study` runs each stage as this command again: name it, since this process is Python
    # (the environment's `egi` script, also under `python -m egi`).
    exe = (
        shutil.which("egi", path=os.path.dirname(sys.executable))
        or shutil.which(sys.argv[0])
        or os.path.abspath(sys.argv[0])
    )
    os.environ.setdefault("EGI_EXE", exe)
    run_cli(["egi", *sys.argv[1:]])
