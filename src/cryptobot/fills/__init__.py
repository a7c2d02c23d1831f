"""The one matching model: how an order fills against a bar (see ``fills.model``)."""
