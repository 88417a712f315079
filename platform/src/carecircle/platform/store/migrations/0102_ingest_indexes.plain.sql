-- A BRIN index on device time: nearly free to maintain on append-mostly data, and lets
-- the rollup job read one minute of a daily partition without scanning all of it.
CREATE INDEX readings_time_brin_idx ON readings USING brin (time);
