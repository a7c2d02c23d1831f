"""The one matching model: how an order fills against a bar (``model``), what it costs
(``costs``) and when funding is paid (``funding``)."""
