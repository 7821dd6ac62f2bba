"""``serve``: the archive in a web browser, live and read-only (qex_archive/server/)."""

from __future__ import annotations

import click

from . import cli, say

MISSING_EXTRA = "serve needs the serve extra: pip install 'qex-archive[serve]'"


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Port."
)
@click.option("--open", "open_browser", is_flag=True, help="Open the runs page in a browser.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, open_browser: bool) -> None:
    """Browse the archive in a web browser: the runs with the filters of 'runs', each run
    with its Bloch spheres and files. Read-only: nothing it serves changes the archive, and
    runs recorded meanwhile appear on reload. Listens on 127.0.0.1 only, unless --host.

    Example:

        qex-archive serve --open
    """
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        raise click.ClickException(MISSING_EXTRA) from None
    from ..server.app import is_loopback, make_app

    app = make_app(ctx.find_root().obj, host=host, port=port)
    root = app.state.served.root.resolve()
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    if not is_loopback(host):
        say(
            f"warning: listening on {host}: anyone who can reach this machine on port {port} "
            "can read the whole archive (there is no login)",
            err=True,
        )
        if host in ("0.0.0.0", "::"):
            url = f"http://127.0.0.1:{port}/"
    say(f"Serving {root} read-only at {url} (Ctrl-C stops)", err=True)
    if open_browser:
        import threading
        import webbrowser

        threading.Timer(0.5, webbrowser.open, [url]).start()
    uvicorn.run(app, host=host, port=port, log_level="warning")
