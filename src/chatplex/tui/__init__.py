"""The Textual UI. It reaches the system only through the coordinator and its events."""
