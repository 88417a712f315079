-- Hypertables already carry a B-tree index on time (create_hypertable's default), which
-- the continuous aggregates use; nothing to add on TimescaleDB.
SELECT 1;
