"""Adapters: bridges that carry another farm manager's job and task updates into the engine
(through the callback service's line protocol, or an in-process dispatcher) and its callbacks'
actions back to that farm manager."""
