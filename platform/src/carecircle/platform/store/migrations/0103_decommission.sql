-- Decommissioning: a device or gateway taken out of service is retired, not deleted.
-- Its readings, alerts and audit history keep pointing at it; it leaves its gateway's
-- configuration, the ingest registry and the device/gateway checks.  Provisioning the
-- same id again brings it back (retired_at is set back to NULL).
ALTER TABLE gateways ADD COLUMN retired_at timestamptz;
ALTER TABLE devices ADD COLUMN retired_at timestamptz;

-- A replacement sensor often takes the retired one's friendly name on the gateway
-- (zigbee2mqtt's "bedroom_motion"): the native id is unique among active devices only.
ALTER TABLE devices DROP CONSTRAINT devices_gateway_id_native_id_key;
CREATE UNIQUE INDEX devices_gateway_native_active_idx
    ON devices (gateway_id, native_id) WHERE retired_at IS NULL;

-- The configuration version last published (retained) to the gateway.  Any change that
-- bumps config_version (provisioning, the API, a retirement) is pushed by the
-- scheduler's config-push job until the two agree, so no writer needs a broker.
ALTER TABLE gateways ADD COLUMN config_pushed_version integer NOT NULL DEFAULT 0;
