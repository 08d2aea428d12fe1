"""The `auth0-sync` command line: local mode, the reference CRM server, operations."""
