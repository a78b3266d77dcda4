"""The composition root: settings, logging, wiring of Bolt + scheduler + stores, and the CLI."""
