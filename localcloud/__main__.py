"""CLI: serve, start, stop, status, run, install-kernel, clean, images."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from localcloud import config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m localcloud", description=__doc__)
    parser.add_argument("--home", help="state folder (default: $LOCALCLOUD_HOME or .localcloud/)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("serve", "run the server in the foreground"),
        ("start", "run the server in the background"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--home", dest="sub_home")
        cmd.add_argument("--port", type=int, help="port (default: $LOCALCLOUD_PORT or derived)")
    for name, text in (
        ("stop", "stop the background server (its jobs are stopped first)"),
        ("status", "say whether a server runs for this state folder"),
        ("clean", "remove kept job folders of jobs that have ended"),
    ):
        sub.add_parser(name, help=text).add_argument("--home", dest="sub_home")
    run = sub.add_parser("run", help="run CMD with every AWS SDK call sent to localcloud")
    run.add_argument("--home", dest="sub_home")
    run.add_argument(
        "--keep-server",
        action="store_true",
        help="a server started for CMD keeps running after it (the kernel uses this)",
    )
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD ...")
    kernel = sub.add_parser("install-kernel", help='install the "Python 3 (localcloud)" kernel')
    kernel.add_argument("--user", action="store_true", help="into the user's Jupyter folder")
    images = sub.add_parser("images", help="the training images' Python environments")
    images_sub = images.add_subparsers(dest="images_command", required=True)
    images_sub.add_parser("list", help="each known image: whether its environment is built, where")
    pull = images_sub.add_parser("pull", help="build an image's environment (pip, from PyPI)")
    pull.add_argument("image", help="e.g. xgboost:3.2-0, or the image's full ECR URI")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except RuntimeError as exc:  # e.g. the server could not start: one line, not a traceback
        print(f"localcloud: {exc}", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace) -> int:
    home = config.state_dir(getattr(args, "sub_home", None) or args.home)
    command = args.command
    if command == "serve":
        from localcloud.server.app import serve

        return serve(config.ServerSettings.from_env(home, args.port))
    if command == "start":
        from localcloud import control

        endpoint = control.ensure_running(home, args.port)
        print(f"localcloud running at {endpoint} (state folder {home})")
        return 0
    if command == "stop":
        from localcloud import control

        stopped = control.stop(home)
        print("localcloud stopped" if stopped else "localcloud was not running")
        return 0
    if command == "status":
        return _status(home)
    if command == "run":
        return _run(home, args.cmd, keep_server=args.keep_server)
    if command == "install-kernel":
        from localcloud.kernel import DISPLAY_NAME, install_kernel

        folder = install_kernel(user=args.user)
        print(f'installed kernel "{DISPLAY_NAME}" in {folder}')
        return 0
    if command == "clean":
        return _clean(home)
    if command == "images":
        return _images(args.images_command, getattr(args, "image", ""))
    return 2


def _images(command: str, image: str) -> int:
    """`images list` / `images pull IMAGE` (localcloud/images/)."""
    from localcloud.images import catalog, envs

    root = envs.cache_root()
    if command == "pull":
        env = envs.pull(image, root)
        print(f"{env.image.name}: {env.root}")
        for line, why in sorted(env.left_out.items()):
            print(f"  not installed: {line} ({why})")
        return 0
    print(f"image environments in {root}")
    for entry in catalog.IMAGES:
        state = envs.status(entry, root)
        where = root / entry.folder
        hint = "" if state == "present" else f"  (python -m localcloud images pull {entry.short})"
        print(f"  {entry.name:26s} Python {entry.python:5s} {state:8s} {where}{hint}")
    print("  PyTorch images run with this machine's torch: no environment is built for them")
    return 0


def _status(home: Path) -> int:
    from localcloud import control

    endpoint = control.running_endpoint(home)
    if endpoint is None:
        print(f"localcloud is not running (state folder {home})")
        return 1
    print(f"localcloud running at {endpoint} (pid {control.server_pid(home)}, state folder {home})")
    return 0


def _run(home: Path, cmd: list[str], keep_server: bool = False) -> int:
    from localcloud import control
    from localcloud.client import client_env

    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        print("usage: python -m localcloud run -- CMD [ARGS...]", file=sys.stderr)
        return 2
    endpoint, started = control.start_if_needed(home)
    env = client_env(endpoint, home)
    if started and not keep_server:
        print(
            f"localcloud: started a server at {endpoint} for this command; "
            "it stops when the command ends",
            file=sys.stderr,
        )
        return _run_then_stop(home, cmd, env)
    if started:
        print(
            f"localcloud: started a server at {endpoint}; it keeps running "
            "(stop it with: python -m localcloud stop)",
            file=sys.stderr,
        )
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(cmd[0], cmd, env)  # the command replaces us: signals and exit code are its own
    except FileNotFoundError:
        print(f"localcloud run: command not found: {cmd[0]}", file=sys.stderr)
        return 127


def _run_then_stop(home: Path, cmd: list[str], env: dict[str, str]) -> int:
    """CMD as a child that gets our signals; then the server we started for it is stopped."""
    import signal
    import subprocess

    from localcloud import control

    try:
        child = subprocess.Popen(cmd, env=env)
    except FileNotFoundError:
        control.stop(home)
        print(f"localcloud run: command not found: {cmd[0]}", file=sys.stderr)
        return 127
    forwarded = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, lambda n, _f: child.send_signal(n)) for sig in forwarded}
    try:
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        control.stop(home)
    if code < 0:  # killed by a signal: end the same way, so our caller sees what CMD's would
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


def _clean(home: Path) -> int:
    """Remove the folders of jobs that have ended; never one whose hosts may still be running."""
    import json

    from localcloud import control

    jobs_dir = home / "jobs"
    if not jobs_dir.is_dir():
        print("nothing to clean")
        return 0
    serving = control.running_endpoint(home) is not None
    removed = kept = 0
    for folder in sorted(p for p in jobs_dir.iterdir() if p.is_dir() and not p.is_symlink()):
        try:
            status = json.loads((folder / "job.json").read_text()).get("TrainingJobStatus")
        except (OSError, ValueError):
            status = None
        hosts_recorded = any((folder / ".host-groups").glob("*"))
        if status in ("Completed", "Failed", "Stopped") and not hosts_recorded:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
        else:
            kept += 1
    why = "still running" if serving else "its hosts may still run: the next start ends them"
    print(f"removed {removed} job folder(s)" + (f", kept {kept} ({why})" if kept else ""))
    print("job records, S3 objects and logs are kept", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
