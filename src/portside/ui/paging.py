"""Page numbers for lists: read from the query string, links that keep the filters."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.requests import Request

from portside.ui.web import whole_number


@dataclass(slots=True)
class Pager:
    number: int
    size: int
    params: dict[str, str]
    path: str
    total: int = 0

    @classmethod
    def from_request(cls, request: Request, size: int) -> Pager:
        raw = request.query_params.get("page", "1")
        number = whole_number(raw, most=1_000_000) or 1
        params = {k: v for k, v in request.query_params.items() if k != "page"}
        return cls(number, size, params, request.url.path)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def first(self) -> int:
        return 0 if self.total == 0 else (self.number - 1) * self.size + 1

    @property
    def last(self) -> int:
        return min(self.total, self.number * self.size)

    def url(self, number: int) -> str:
        return f"{self.path}?{urlencode({**self.params, 'page': str(number)})}"

    @property
    def previous_url(self) -> str | None:
        return self.url(self.number - 1) if self.number > 1 else None

    @property
    def next_url(self) -> str | None:
        return self.url(self.number + 1) if self.number < self.pages else None
