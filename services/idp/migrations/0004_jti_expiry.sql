-- The token endpoint prunes expired actor-token ids on every write (`store::replay::consume`):
-- without this index that prune scans the whole table, which grows by one row per hop.
CREATE INDEX used_jtis_expires_at ON used_jtis (expires_at);
