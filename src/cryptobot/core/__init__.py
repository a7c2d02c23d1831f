"""Plain types, configuration and errors shared by every layer."""
