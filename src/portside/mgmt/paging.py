"""Pagination and sorting parameters, validated, and the headers that describe a page:
`X-Total-Count` and an RFC 8288 `Link` to the next and previous pages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, Query, Request, Response

from portside.auth.errors import Invalid

MAX_PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class Page:
    number: int
    size: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size


def page(
    page: Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1.")] = 1,
    page_size: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page (1-100).")
    ] = 25,
) -> Page:
    return Page(page, page_size)


Paging = Annotated[Page, Depends(page)]


def parse_sort(value: str | None, allowed: set[str], default: str) -> tuple[str, bool]:
    """`name` or `-pushed_at` -> (field, descending); 400 naming the allowed fields."""
    text = value or default
    descending = text.startswith("-")
    name = text.removeprefix("-")
    if name not in allowed:
        raise Invalid(f"cannot sort by {name!r}; choose one of: {', '.join(sorted(allowed))}")
    return name, descending


def describe_page(request: Request, response: Response, current: Page, total: int) -> None:
    response.headers["X-Total-Count"] = str(total)
    links = []
    params = dict(request.query_params)
    if current.offset + current.size < total:
        params.update(page=str(current.number + 1), page_size=str(current.size))
        links.append(f'<{request.url.path}?{urlencode(params)}>; rel="next"')
    if current.number > 1:
        params.update(page=str(current.number - 1), page_size=str(current.size))
        links.append(f'<{request.url.path}?{urlencode(params)}>; rel="prev"')
    if links:
        response.headers["Link"] = ", ".join(links)
