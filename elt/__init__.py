"""elt package."""
