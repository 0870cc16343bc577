"""Module paths that code outside the upload part finds by name (ingest.context): `ingest.main` and
`ingest.demo` look them up with importlib and silently skip them when missing, so a move that
forgets one would switch the feature off without any other test failing.
"""

from __future__ import annotations

import importlib

from ingest import main
from ingest.api_upload import create_upload_router
from ingest.upload.store import delete_for_user


def test_main_finds_the_upload_router_factory_in_ingest_api_upload() -> None:
    assert main._upload_router_factory() is create_upload_router


def test_demo_reset_finds_the_upload_cleanup_hook_in_ingest_upload_repository() -> None:
    module = importlib.import_module("ingest.upload_repository")
    assert getattr(module, "delete_for_user", None) is delete_for_user
