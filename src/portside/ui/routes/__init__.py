"""The UI's pages, one module per area; ROUTES is every route, in matching order."""

from __future__ import annotations

from starlette.routing import BaseRoute

from portside.ui.routes import admin, home, profile, project, projects, repository, signin

ROUTES: list[BaseRoute] = [
    *home.routes,
    *signin.routes,
    *projects.routes,
    *project.routes,
    *repository.routes,
    *admin.routes,
    *profile.routes,
]
