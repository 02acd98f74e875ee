"""``shipyard projects``: projects and their members' roles."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from shipyard.cli import render
from shipyard.cli.access import OPERATOR_NOTE, auth_backend
from shipyard.cli.context import JsonOption
from shipyard.entities.auth import Role

__all__ = ["app"]

app = typer.Typer(
    help="Projects and who may do what in them.\n\n"
         "Experiments, registered models, datasets, deployments and monitors belong to one project (the "
         "'default' one unless chosen: SHIPYARD_PROJECT). Each member has a role there: viewer < editor < "
         "maintainer < owner (see docs/security.md for the table of what each may do); server admins hold "
         "every role everywhere.\n\n"
         f"{OPERATOR_NOTE}\n\n"
         "Examples:\n"
         "  shipyard projects create churn --description \"Churn models\"\n"
         "  shipyard projects grant churn bob viewer\n"
         "  shipyard projects members churn\n"
         "  shipyard projects revoke churn bob",
    no_args_is_help=True,
)

Project = Annotated[str, typer.Argument(metavar="PROJECT", help="The project's name.", show_default=False)]
User = Annotated[str, typer.Argument(metavar="USER", help="The user's name.", show_default=False)]


@app.command()
def create(
    ctx: typer.Context, name: Project,
    description: Annotated[str, typer.Option("--description", metavar="TEXT", help="What it holds.")] = "",
) -> None:
    """Create a project (server admins); a creator who is no admin becomes its owner."""
    project = auth_backend(ctx).create_project(name, description)
    render.info(Text.assemble("Created project ", (project.name, "bold"), "; add members with: shipyard projects "
                              f"grant {project.name} USER ROLE"))


@app.command("list")
def list_projects(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the projects you can see (every project for admins)."""
    projects = auth_backend(ctx).list_projects()
    if as_json:
        from shipyard.auth.wire import project_to_wire

        render.print_json([project_to_wire(p) for p in projects])
        return
    table = render.make_table("Name", "Description", "Created by", "Created")
    for p in projects:
        table.add_row(Text(p.name, style="bold"), p.description or render.MISSING, p.created_by or render.MISSING,
                      render.format_time(p.creation_time))
    render.show(table if projects else Text("No projects you can see"))


@app.command()
def grant(
    ctx: typer.Context, project: Project, user: User,
    role: Annotated[str, typer.Argument(metavar="ROLE", help="viewer, editor, maintainer or owner.",
                                        show_default=False)],
) -> None:
    """Give USER ROLE in PROJECT (replacing the role it had): project owners and admins."""
    chosen = Role.parse(role)
    auth_backend(ctx).grant(project, user, chosen)
    render.info(Text.assemble((user, "bold"), f" is now {chosen.label} in project ", (project, "bold")))


@app.command()
def revoke(ctx: typer.Context, project: Project, user: User) -> None:
    """Remove USER from PROJECT: project owners and admins."""
    auth_backend(ctx).revoke(project, user)
    render.info(Text.assemble("Removed ", (user, "bold"), " from project ", (project, "bold")))


@app.command()
def members(ctx: typer.Context, project: Project, as_json: JsonOption = False) -> None:
    """List the members of PROJECT with their roles."""
    found = auth_backend(ctx).members(project)
    if as_json:
        from shipyard.auth.wire import member_to_wire

        render.print_json([member_to_wire(m) for m in found])
        return
    table = render.make_table("User", "Role", title=f"Members of {project}")
    for m in found:
        table.add_row(Text(m.user, style="bold"), m.role.label)
    render.show(table if found else Text(f"Project {project} has no members (admins still see it)"))
