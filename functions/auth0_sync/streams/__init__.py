"""Auth0 event stream management: the Management API client and the stream health rules.

Imported by the `auth0-sync streams` CLI and by the scheduled stream health Lambda.
"""
