"""Harness of the end-to-end suite: child processes, recording HTTP clients, logins and the secret scanner."""
