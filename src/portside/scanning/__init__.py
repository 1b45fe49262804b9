"""Reading what is inside an image: safe layer reading, the package inventory, SBOMs.

Pure: no database, no HTTP, no files; it gets layer blobs as byte streams.

- `inventory.inventory(layers, limits)`: the `Inventory` of an image from its layer
  blobs, lowest first (`model.py` holds the shapes shared with the vulnerability
  database and the scan service);
- `limits.Limits` / `limits.LayerRejected`: the bounds a scan keeps to, and the error
  a hostile or malformed layer raises (its message is for the user);
- `sbom.spdx` / `sbom.cyclonedx` / `sbom.render`: SBOM documents of an inventory, and
  their media types for attaching them as referrers;
- underneath: `streams` (decompression with limits), `tar` (a bounded tar reader),
  `layers` (whiteouts, links, dispatch to collectors), `collectors/` (one module per
  package format), `purl` (package URLs and OSV ecosystems).
"""
