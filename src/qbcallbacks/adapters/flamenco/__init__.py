"""The Flamenco adapter: Flamenco Manager's MQTT job and task updates in, its REST API out.

`messages` reads the published payloads and maps statuses to events, `state` keeps the durable
job-number table, `rest` is the `Supervisor` that turns callbacks' actions into API calls and
`bridge` subscribes to the broker and feeds the events on.
"""
