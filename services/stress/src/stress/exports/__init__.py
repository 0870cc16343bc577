"""Trade exports and the export history (api.md #69–#71)."""
