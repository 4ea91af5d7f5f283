"""``elt docs build`` and ``elt docs serve``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

docs_app = typer.Typer(
    help="The data-docs portal: run history, dbt docs and GX Data Docs in one local site.",
    no_args_is_help=True,
)
console = Console()
err = Console(stderr=True)


@docs_app.command("build")
def build_command(
    dbt_docs: Annotated[
        bool, typer.Option(help="Run `dbt docs generate` and include the dbt docs.")
    ] = True,
    limit: Annotated[int, typer.Option(help="How many recent runs to show.")] = 50,
) -> None:
    """Build the portal into .elt/site from elt_meta, dbt docs and GX Data Docs."""
    from elt.docs_site.build import build_site

    with console.status("building the data-docs site…"):
        result = build_site(dbt_docs=dbt_docs, limit=limit)
    console.print(
        f"[green]site built[/] {result.index} ({result.runs} runs,"
        f" {result.marts} marts, {result.failed_checks} open checks,"
        f" dbt docs: {'yes' if result.dbt_docs else 'no'},"
        f" GX docs: {'yes' if result.gx_docs else 'no'})"
    )
    console.print("serve it with: elt docs serve")


@docs_app.command("serve")
def serve_command(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 8580,
) -> None:
    """Serve the built portal on 127.0.0.1 until Ctrl-C."""
    from elt.docs_site.build import site_dir
    from elt.docs_site.serve import make_server, url_of

    try:
        server = make_server(site_dir(), port)
    except FileNotFoundError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from None
    except OSError as exc:
        err.print(f"[bold red]error:[/] cannot listen on 127.0.0.1:{port}: {exc}; try --port")
        raise typer.Exit(1) from None
    print(f"serving the data docs at {url_of(server)}  (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
