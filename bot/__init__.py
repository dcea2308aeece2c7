"""The application: settings, wiring, storage, the job engine, quota and rendering."""
