"""The UI's pages, one module per area; ROUTES is every route, in matching order."""

from __future__ import annotations

from starlette.routing import BaseRoute

from portside.ui.routes import (
    admin,
    artifact,
    home,
    profile,
    project,
    project_policies,
    project_robots,
    project_settings,
    project_signing,
    project_webhooks,
    projects,
    repository,
    signin,
)

ROUTES: list[BaseRoute] = [
    *home.routes,
    *signin.routes,
    *projects.routes,
    *project.routes,
    *project_robots.routes,
    *project_settings.routes,
    *project_signing.routes,
    *project_policies.routes,
    *project_webhooks.routes,
    *artifact.routes,  # before repository: its {name:path} would swallow /-/artifacts
    *repository.routes,
    *admin.routes,
    *profile.routes,
]
