"""Where things live inside a storage driver. Bump LAYOUT_VERSION to change the tree.

    v1/
      blobs/<algorithm>/<first two hex>/<hex>     one file per blob, stored once
      uploads/<upload_id>/data                    bytes received so far for an upload

Everything else (which repository may see which blob, manifests, tags, upload rows)
is in the metadata database.
"""

from __future__ import annotations

from portside.digest import Digest

LAYOUT_VERSION = "v1"
BLOBS = f"{LAYOUT_VERSION}/blobs"
UPLOADS = f"{LAYOUT_VERSION}/uploads"


def blob_path(digest: Digest) -> str:
    return f"{BLOBS}/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}"


def upload_dir(upload_id: str) -> str:
    return f"{UPLOADS}/{upload_id}"


def upload_data_path(upload_id: str) -> str:
    return f"{UPLOADS}/{upload_id}/data"
