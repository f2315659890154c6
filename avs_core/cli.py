"""The ``avs`` command: ``avs inspect ...`` renders the pseudo-mask gallery (see ``avs_core.inspect``)."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="avs", description="Weakly-supervised AVS pipeline tools")
    parser.add_argument("command", choices=["inspect"], help="inspect: render every map of chosen videos")
    args, rest = parser.parse_known_args(argv[:1])
    if args.command == "inspect":
        from avs_core.inspect import main as inspect_main

        return inspect_main(argv[1:])
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
