"""The bounds a scan keeps to, and the one error a hostile layer raises.

Every reading step checks one of these, so a scan's memory, time and work are bounded
whatever a layer holds: a layer that crosses a bound that protects the server (expanded
size, compression ratio, entry count, header sizes, malformed archive) fails the scan
with `LayerRejected`; a single file that is only too large to read (a 200 MiB jar) is
skipped with a warning in the inventory, since the rest of the image can still be read.
The scan service passes its configured values; the defaults suit ordinary images.
"""

from __future__ import annotations

from dataclasses import dataclass

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


class LayerRejected(Exception):
    """A layer the scanner refuses to read further, with a reason a user can act on
    ("layer sha256:ab… expands past 8 GiB"). The scan fails; nothing else is harmed."""

    def __init__(self, reason: str, *, layer: str | None = None) -> None:
        self.reason = reason
        self.layer = layer
        super().__init__(f"layer {layer} {reason}" if layer else reason)

    def for_layer(self, layer: str) -> LayerRejected:
        """The same rejection, naming the layer (the reader raises it without one)."""
        return self if self.layer else LayerRejected(self.reason, layer=layer)


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds for one scan. Byte sizes are bytes; every one must be positive."""

    # Protecting the server: crossing one of these rejects the layer.
    max_layer_bytes: int = 8 * GiB  # uncompressed tar stream of one layer
    max_ratio: int = 100  # uncompressed / compressed bytes of one layer ...
    ratio_grace_bytes: int = 128 * MiB  # ... checked once this much has been expanded
    max_entries: int = 1_000_000  # tar entries in one layer
    max_layers: int = 512
    max_image_bytes: int = 32 * GiB  # uncompressed tar streams of all layers together
    max_header_bytes: int = 1 * MiB  # one pax extended header or GNU long name
    max_path_bytes: int = 4096  # one entry's name or link target
    # Bounding what is kept: crossing one of these skips a file (with a warning).
    max_file_bytes: int = 64 * MiB  # a package database, METADATA, jar... read in memory
    max_binary_bytes: int = 512 * MiB  # an executable scanned (streamed) for Go build info
    max_kept_bytes: int = 64 * MiB  # links and package records kept for the image (estimated)
    max_link_depth: int = 40  # symbolic links followed for one path (Linux's limit)
    max_packages: int = 100_000  # packages reported for the whole image
    max_archive_members: int = 20_000  # members of a jar examined
    max_archive_depth: int = 2  # jars inside jars (Spring Boot's BOOT-INF/lib)

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            if getattr(self, name) <= 0:
                raise ValueError(f"scan limit {name} must be positive")
