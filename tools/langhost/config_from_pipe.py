"""Runs the SDK's `pulumi-language-python-exec` with `PULUMI_CONFIG` read from a pipe the language host left open.

The Go host, and this project's host for ordinary stacks, pass the whole stack config in that one environment
variable, and Linux refuses to start a process with a single environment string over 128 KiB ("Argument list
too long", pulumi/pulumi#8680): about a thousand certificates. For a config that large the host writes it to a
pipe instead (never a file: it holds the decrypted secrets) and runs this shim, which reads it into this
process's own environment, where the SDK reads it, and then runs the executor as `python EXEC ARGS` would.

    python config_from_pipe.py EXEC ARGS...     (PULUMI_CONFIG_FD: the pipe's read end, inherited)
"""

from __future__ import annotations

import os
import runpy
import sys

FD_ENV = "PULUMI_CONFIG_FD"


def main() -> None:
    with os.fdopen(int(os.environ.pop(FD_ENV)), "rb") as pipe:
        os.environ["PULUMI_CONFIG"] = pipe.read().decode()
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    sys.path[0] = os.path.dirname(os.path.abspath(script))  # as `python EXEC` has it
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
