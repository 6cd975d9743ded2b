"""CLI: `python -m course run [--fast]`, `site`, `refresh [STEM ...]` and `live-check`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course import FAST_PARAMS, NOTEBOOKS_DIR


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the course or render its site."""
    parser = argparse.ArgumentParser(prog="python -m course", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute every notebook against localcloud, render the site")
    run.add_argument("--fast", action="store_true", help="use the test parameters (quick check)")
    run.add_argument("--out", type=Path, default=Path("build"), help="output folder (build)")
    run.add_argument("--notebooks", type=Path, default=NOTEBOOKS_DIR, help=argparse.SUPPRESS)
    run.add_argument("--params", type=Path, default=FAST_PARAMS, help=argparse.SUPPRESS)
    run.add_argument("--kernel", default="localcloud", help=argparse.SUPPRESS)
    run.add_argument("--no-localcloud", action="store_true", help=argparse.SUPPRESS)
    run.add_argument("--no-site", action="store_true", help="skip rendering the site")
    site = sub.add_parser("site", help="render build/site from an earlier run")
    site.add_argument("--out", type=Path, default=Path("build"), help="output folder (build)")
    refresh = sub.add_parser("refresh", help="re-execute notebooks in place (committed outputs)")
    refresh.add_argument("stems", nargs="*", help="lessons to refresh, e.g. 03_builtin_xgboost")
    live = sub.add_parser("live-check", help="run 00, 02 and 08 against real AWS (costs cents)")
    live.add_argument("--out", type=Path, default=Path("build/live"), help="output folder")
    args = parser.parse_args(argv)

    if args.command == "site":
        from course.site import render_site

        print(f"site: {render_site(args.out)}")
        return 0

    if args.command == "refresh":
        from course.refresh import refresh

        return refresh(args.stems)

    from course.run import Options, run_course

    if args.command == "live-check":
        from course.live import live_options

        opts = live_options(args.out)
        if opts is None:
            return 2
        return run_course(opts)
    opts = Options(
        notebooks_dir=args.notebooks.resolve(),
        out_dir=args.out,
        fast=args.fast,
        params_file=args.params,
        kernel=args.kernel,
        use_localcloud=not args.no_localcloud,
        render_site=not args.no_site,
    )
    try:
        return run_course(opts)
    except (RuntimeError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
