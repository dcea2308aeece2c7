"""A server's settings: the value (``config.ServerConfig``) and the service that reads, caches and changes them
(``service.ServerSettingsService``)."""
