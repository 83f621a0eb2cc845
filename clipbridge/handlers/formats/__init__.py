"""Incident payload formats: each request topic's payloads become clipbridge incidents (or are ignored).

`clipbridge` is the service's own schema; `mapped` takes the fields of any JSON payload by JSON Pointer;
`frigate-events` and `frigate-reviews` read Frigate's MQTT messages. A translator raises ClipError for a payload
it cannot read (the sender gets a `rejected` reply) and returns `Ignored` for one that asks for no clip.
"""
