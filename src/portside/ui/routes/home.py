"""The front door: `/` goes to the projects list."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route


async def home(request: Request) -> Response:
    return RedirectResponse("/projects", status_code=303)


async def favicon(request: Request) -> Response:
    return RedirectResponse("/static/portside.svg", status_code=301)


routes = [Route("/", home), Route("/favicon.ico", favicon)]
