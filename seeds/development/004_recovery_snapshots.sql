-- Development seed: daily recovery check-ins. Idempotent like 001_users.sql.

INSERT INTO recovery_snapshots AS t
  (id, user_id, taken_on, source, sleep_hours, readiness, soreness, stress,
   resting_heart_rate, hrv_ms, bodyweight, unit, metrics, notes)
VALUES
  ('88888888-8888-4888-8888-000000000001', '11111111-1111-4111-8111-000000000001', '2026-01-05', 'manual',
   7.50, 8, 3, 2, NULL, NULL, 68.40, 'kg', '{}', NULL),
  ('88888888-8888-4888-8888-000000000002', '11111111-1111-4111-8111-000000000001', '2026-01-07', 'wearable',
   6.25, 6, 5, 4, 54, 58.00, NULL, NULL, '{"device": "ring", "sleep_score": 74, "deep_sleep_minutes": 61}', NULL),
  ('88888888-8888-4888-8888-000000000003', '11111111-1111-4111-8111-000000000002', '2026-01-06', 'manual',
   8.00, 7, 2, 3, NULL, NULL, 198.40, 'lb', '{}', 'Slept well.')
ON CONFLICT (id) DO UPDATE SET
  user_id            = EXCLUDED.user_id,
  taken_on           = EXCLUDED.taken_on,
  source             = EXCLUDED.source,
  sleep_hours        = EXCLUDED.sleep_hours,
  readiness          = EXCLUDED.readiness,
  soreness           = EXCLUDED.soreness,
  stress             = EXCLUDED.stress,
  resting_heart_rate = EXCLUDED.resting_heart_rate,
  hrv_ms             = EXCLUDED.hrv_ms,
  bodyweight         = EXCLUDED.bodyweight,
  unit               = EXCLUDED.unit,
  metrics            = EXCLUDED.metrics,
  notes              = EXCLUDED.notes
WHERE (t.user_id, t.taken_on, t.source, t.sleep_hours, t.readiness, t.soreness, t.stress,
       t.resting_heart_rate, t.hrv_ms, t.bodyweight, t.unit, t.metrics, t.notes)
  IS DISTINCT FROM
  (EXCLUDED.user_id, EXCLUDED.taken_on, EXCLUDED.source, EXCLUDED.sleep_hours, EXCLUDED.readiness,
   EXCLUDED.soreness, EXCLUDED.stress, EXCLUDED.resting_heart_rate, EXCLUDED.hrv_ms,
   EXCLUDED.bodyweight, EXCLUDED.unit, EXCLUDED.metrics, EXCLUDED.notes);
