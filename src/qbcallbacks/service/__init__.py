"""The engine as a long-running service for a supervisor in another process or language:
events in over a socket (JSON-RPC 2.0, one object per line), the supervisor's answers back
over the same connection. The protocol is `spec/service.md`."""

from __future__ import annotations
