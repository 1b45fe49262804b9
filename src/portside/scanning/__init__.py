"""Reading what is inside an image: safe layer reading, the package inventory, SBOMs."""
