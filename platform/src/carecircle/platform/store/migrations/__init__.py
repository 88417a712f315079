"""Plain SQL migrations, applied in order by carecircle.platform.store.migrate."""
