"""Rearguard's network side: FastAPI app, sessions, WebSockets and the command line."""
