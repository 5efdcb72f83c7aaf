"""The Flamenco adapter: Flamenco Manager's MQTT job and task updates in, its REST API out.

`messages` reads the Manager's payloads and maps statuses to events, `state` keeps what the
adapter knows of every job and task (and the events it owes), `reconcile` applies updates and
the Manager's own record to it, `api` is the REST client, `rest` the `Supervisor` that turns
callbacks' actions into API calls, `sinks` where events go, and `bridge` the loop that ties
them together.
"""
