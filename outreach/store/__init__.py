"""Where state lives: Redis key names and shards, Lua scripts and batched round trips, connections,
the embedded store file, dead letters."""
