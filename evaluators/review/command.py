"""`shadowtap ui`: serve the review UI over the store, on loopback unless told otherwise."""

from __future__ import annotations

import ipaddress

import click

from shadowtap.core.cli_common import load_config_or_exit, open_store_or_exit


@click.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="TOML config file: the store, the candidates, [gate], [outcomes] and [admin] token_env.")
@click.option("--store", "store_path", default=None, help="Capture store to open instead of [store] path.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Anything but loopback exposes captured traffic to the network.")
@click.option("--port", default=8788, show_default=True, type=int, help="Port to bind.")
def ui(config_path: str, store_path: str | None, host: str, port: int) -> None:
    """Browse the verdict and the exchanges behind it, and label answers as a reviewer.

    Reviewers sign in with the admin token ([admin] token_env, as for the feedback API) and their
    name; labels are stored as feedback. Without the token the UI is read-only.
    """
    import uvicorn

    from shadowtap.evaluators.review.app import review_app
    from shadowtap.evaluators.review.auth import ReviewAuth

    config = load_config_or_exit(config_path)
    if not _is_loopback(host):
        click.echo(f"shadowtap ui: binding {host}: captured requests and answers are visible to anyone who can "
                   "reach it (sign-in guards only reviewing)", err=True)
    store = open_store_or_exit(config, store_path)  # fail here, with the reason, rather than on the first page
    target, shown_path = config.store.read_target(store_path), store.path
    store.close()
    auth = ReviewAuth(config.admin.token())
    if not auth.enabled:
        click.echo(f"shadowtap ui: read-only: set {config.admin.token_env} to let reviewers sign in", err=True)
    click.echo(f"shadowtap ui on http://{host}:{port}/ over {shown_path} (Ctrl-C to stop)", err=True)
    uvicorn.run(review_app(config, target, auth), host=host, port=port, log_level="warning")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
