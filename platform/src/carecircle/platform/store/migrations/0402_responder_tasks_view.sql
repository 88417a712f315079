-- Responders see the alerts (and the residents on them) they were assigned by hand
-- (alert_assignments) or that dispatch offered them and they still hold: a task that is
-- offered, accepted, en route or on scene.  Declined, expired, released, resolved,
-- handed-over and cancelled tasks no longer grant sight of the alert.
CREATE OR REPLACE VIEW responder_alerts AS
    SELECT alert_id, responder_id FROM alert_assignments
    UNION
    SELECT alert_id, responder_id FROM tasks
    WHERE status IN ('offered', 'accepted', 'en_route', 'on_scene');
