"""Compatibility path: `ingest.demo` calls `ingest.upload_repository.delete_for_user` during demo
reset (the contract in `ingest.context`). The upload storage itself lives in `ingest.upload.store`.
"""

from ingest.upload.store import delete_for_user

__all__ = ["delete_for_user"]
