from __future__ import annotations

from collections.abc import Iterator

import pytest

from portside.metadata.db import Database
from portside.metadata.engine import make_engine


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    engine = make_engine(database_url)
    yield Database(engine)
    engine.dispose()
