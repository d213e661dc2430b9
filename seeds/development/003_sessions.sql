-- Development seed: sessions, what was lifted in them, the metrics computed from
-- them and the edge cases the load calculator flagged. Idempotent like 001_users.sql.

INSERT INTO sessions AS t
  (id, user_id, formula_config_id, program_id, program_week, program_day,
   scheduled_on, status, started_at, completed_at, session_rpe, notes)
VALUES
  -- Ada, program 531-bbb v2, week 1.
  ('55555555-5555-4555-8555-000000000001', '11111111-1111-4111-8111-000000000001', '33333333-3333-4333-8333-000000000004',
   '44444444-4444-4444-8444-000000000002', 1, 1,
   '2026-01-05', 'completed', '2026-01-05 17:30:00+01', '2026-01-05 18:45:00+01', 8.0, 'Squat felt fast.'),
  ('55555555-5555-4555-8555-000000000002', '11111111-1111-4111-8111-000000000001', '33333333-3333-4333-8333-000000000004',
   '44444444-4444-4444-8444-000000000002', 1, 2,
   '2026-01-07', 'completed', '2026-01-07 07:00:00+01', '2026-01-07 08:05:00+01', 8.5, NULL),
  ('55555555-5555-4555-8555-000000000003', '11111111-1111-4111-8111-000000000001', '33333333-3333-4333-8333-000000000004',
   '44444444-4444-4444-8444-000000000002', 1, 3,
   '2026-01-09', 'planned', NULL, NULL, NULL, NULL),
  -- Ben, linear 5x5.
  ('55555555-5555-4555-8555-000000000004', '11111111-1111-4111-8111-000000000002', '33333333-3333-4333-8333-000000000006',
   '44444444-4444-4444-8444-000000000003', 1, 1,
   '2026-01-06', 'completed', '2026-01-06 18:00:00-06', '2026-01-06 19:10:00-06', 7.5, NULL),
  ('55555555-5555-4555-8555-000000000005', '11111111-1111-4111-8111-000000000002', '33333333-3333-4333-8333-000000000006',
   '44444444-4444-4444-8444-000000000003', 1, 2,
   '2026-01-08', 'skipped', NULL, NULL, NULL, 'Travelling.')
ON CONFLICT (id) DO UPDATE SET
  user_id           = EXCLUDED.user_id,
  formula_config_id = EXCLUDED.formula_config_id,
  program_id        = EXCLUDED.program_id,
  program_week      = EXCLUDED.program_week,
  program_day       = EXCLUDED.program_day,
  scheduled_on      = EXCLUDED.scheduled_on,
  status            = EXCLUDED.status,
  started_at        = EXCLUDED.started_at,
  completed_at      = EXCLUDED.completed_at,
  session_rpe       = EXCLUDED.session_rpe,
  notes             = EXCLUDED.notes
WHERE (t.user_id, t.formula_config_id, t.program_id, t.program_week, t.program_day, t.scheduled_on,
       t.status, t.started_at, t.completed_at, t.session_rpe, t.notes)
  IS DISTINCT FROM
  (EXCLUDED.user_id, EXCLUDED.formula_config_id, EXCLUDED.program_id, EXCLUDED.program_week,
   EXCLUDED.program_day, EXCLUDED.scheduled_on, EXCLUDED.status, EXCLUDED.started_at,
   EXCLUDED.completed_at, EXCLUDED.session_rpe, EXCLUDED.notes);

-- Ada's sets follow the formula (training max x 65/75/85 %, rounded to 2.5 kg, last
-- set as many reps as possible); estimated_one_rep_max is Epley on the AMRAP set.
INSERT INTO session_logs AS t
  (id, session_id, position, lift, exercise_name, unit, sets, top_set_weight, estimated_one_rep_max, notes)
VALUES
  ('66666666-6666-4666-8666-000000000001', '55555555-5555-4555-8555-000000000001', 1, 'squat', NULL, 'kg',
   '[{"reps": 5, "weight": 82.5}, {"reps": 5, "weight": 92.5}, {"reps": 9, "weight": 105, "amrap": true, "rpe": 9}]',
   105.00, 136.50, NULL),
  ('66666666-6666-4666-8666-000000000002', '55555555-5555-4555-8555-000000000001', 2, 'accessory', 'Romanian deadlift', 'kg',
   '[{"reps": 10, "weight": 80}, {"reps": 10, "weight": 80}, {"reps": 10, "weight": 80}]',
   80.00, NULL, NULL),
  ('66666666-6666-4666-8666-000000000003', '55555555-5555-4555-8555-000000000002', 1, 'bench_press', NULL, 'kg',
   '[{"reps": 5, "weight": 52.5}, {"reps": 5, "weight": 60}, {"reps": 11, "weight": 67.5, "amrap": true, "rpe": 9.5}]',
   67.50, 92.25, 'AMRAP past the formula''s 10-rep range; see edge_cases.'),
  ('66666666-6666-4666-8666-000000000004', '55555555-5555-4555-8555-000000000002', 2, 'accessory', 'Chin-up', 'kg',
   '[{"reps": 8, "weight": 0}, {"reps": 7, "weight": 0}, {"reps": 6, "weight": 0}]',
   0.00, NULL, 'Bodyweight'),
  -- Ben: 5x5 in lb. The calculator's 40 lb warm-up was below the 45 lb bar.
  ('66666666-6666-4666-8666-000000000005', '55555555-5555-4555-8555-000000000004', 1, 'squat', NULL, 'lb',
   '[{"reps": 5, "weight": 45, "warmup": true}, {"reps": 5, "weight": 275}, {"reps": 5, "weight": 275},
     {"reps": 5, "weight": 275}, {"reps": 5, "weight": 275}, {"reps": 5, "weight": 275}]',
   275.00, 320.83, NULL),
  ('66666666-6666-4666-8666-000000000006', '55555555-5555-4555-8555-000000000004', 2, 'bench_press', NULL, 'lb',
   '[{"reps": 5, "weight": 185}, {"reps": 5, "weight": 185}, {"reps": 5, "weight": 185},
     {"reps": 5, "weight": 185}, {"reps": 4, "weight": 185, "failed": true}]',
   185.00, 215.83, 'Missed the last rep.')
ON CONFLICT (id) DO UPDATE SET
  session_id            = EXCLUDED.session_id,
  position              = EXCLUDED.position,
  lift                  = EXCLUDED.lift,
  exercise_name         = EXCLUDED.exercise_name,
  unit                  = EXCLUDED.unit,
  sets                  = EXCLUDED.sets,
  top_set_weight        = EXCLUDED.top_set_weight,
  estimated_one_rep_max = EXCLUDED.estimated_one_rep_max,
  notes                 = EXCLUDED.notes
WHERE (t.session_id, t.position, t.lift, t.exercise_name, t.unit, t.sets, t.top_set_weight,
       t.estimated_one_rep_max, t.notes)
  IS DISTINCT FROM
  (EXCLUDED.session_id, EXCLUDED.position, EXCLUDED.lift, EXCLUDED.exercise_name, EXCLUDED.unit,
   EXCLUDED.sets, EXCLUDED.top_set_weight, EXCLUDED.estimated_one_rep_max, EXCLUDED.notes);

-- Metrics per session and lift (volume load = sum of reps x weight over work sets),
-- plus one per-day score (session_id and lift NULL).
INSERT INTO performance_metrics AS t
  (id, user_id, session_id, lift, metric, value, unit, measured_on, metadata)
VALUES
  ('77777777-7777-4777-8777-000000000001', '11111111-1111-4111-8111-000000000001', '55555555-5555-4555-8555-000000000001',
   'squat', 'volume_load', 1820.000, 'kg', '2026-01-05', '{"sets": 3, "reps": 19}'),
  ('77777777-7777-4777-8777-000000000002', '11111111-1111-4111-8111-000000000001', '55555555-5555-4555-8555-000000000001',
   'squat', 'estimated_one_rep_max', 136.500, 'kg', '2026-01-05', '{"formula": "epley", "from": {"reps": 9, "weight": 105}}'),
  ('77777777-7777-4777-8777-000000000003', '11111111-1111-4111-8111-000000000001', '55555555-5555-4555-8555-000000000002',
   'bench_press', 'volume_load', 1305.000, 'kg', '2026-01-07', '{"sets": 3, "reps": 21}'),
  ('77777777-7777-4777-8777-000000000004', '11111111-1111-4111-8111-000000000001', '55555555-5555-4555-8555-000000000002',
   'bench_press', 'estimated_one_rep_max', 92.250, 'kg', '2026-01-07', '{"formula": "epley", "from": {"reps": 11, "weight": 67.5}, "extrapolated": true}'),
  ('77777777-7777-4777-8777-000000000005', '11111111-1111-4111-8111-000000000001', NULL,
   NULL, 'dots', 409.488, NULL, '2025-12-01', '{"total_kg": 400, "bodyweight_kg": 68.5, "sex": "female"}'),
  ('77777777-7777-4777-8777-000000000006', '11111111-1111-4111-8111-000000000002', '55555555-5555-4555-8555-000000000004',
   'squat', 'volume_load', 6875.000, 'lb', '2026-01-06', '{"sets": 5, "reps": 25, "warmups_excluded": 1}'),
  ('77777777-7777-4777-8777-000000000007', '11111111-1111-4111-8111-000000000002', '55555555-5555-4555-8555-000000000004',
   'bench_press', 'volume_load', 4440.000, 'lb', '2026-01-06', '{"sets": 5, "reps": 24}')
ON CONFLICT (id) DO UPDATE SET
  user_id     = EXCLUDED.user_id,
  session_id  = EXCLUDED.session_id,
  lift        = EXCLUDED.lift,
  metric      = EXCLUDED.metric,
  value       = EXCLUDED.value,
  unit        = EXCLUDED.unit,
  measured_on = EXCLUDED.measured_on,
  metadata    = EXCLUDED.metadata
WHERE (t.user_id, t.session_id, t.lift, t.metric, t.value, t.unit, t.measured_on, t.metadata)
  IS DISTINCT FROM
  (EXCLUDED.user_id, EXCLUDED.session_id, EXCLUDED.lift, EXCLUDED.metric, EXCLUDED.value,
   EXCLUDED.unit, EXCLUDED.measured_on, EXCLUDED.metadata);

INSERT INTO edge_cases AS t
  (id, user_id, session_id, session_log_id, kind, severity, details, resolved_at, resolution)
VALUES
  ('99999999-9999-4999-8999-000000000001', '11111111-1111-4111-8111-000000000001', '55555555-5555-4555-8555-000000000002',
   '66666666-6666-4666-8666-000000000003', 'reps_out_of_range', 'warning',
   '{"formula": "epley", "reps": 11, "valid_reps": {"min": 1, "max": 10}, "action": "extrapolated"}',
   '2026-01-07 12:00:00+01', 'Accepted: estimate kept, marked as extrapolated.'),
  ('99999999-9999-4999-8999-000000000002', '11111111-1111-4111-8111-000000000002', '55555555-5555-4555-8555-000000000004',
   '66666666-6666-4666-8666-000000000005', 'weight_below_bar', 'info',
   '{"prescribed": 40, "bar_weight": 45, "unit": "lb", "used": 45}',
   NULL, NULL)
ON CONFLICT (id) DO UPDATE SET
  user_id        = EXCLUDED.user_id,
  session_id     = EXCLUDED.session_id,
  session_log_id = EXCLUDED.session_log_id,
  kind           = EXCLUDED.kind,
  severity       = EXCLUDED.severity,
  details        = EXCLUDED.details,
  resolved_at    = EXCLUDED.resolved_at,
  resolution     = EXCLUDED.resolution
WHERE (t.user_id, t.session_id, t.session_log_id, t.kind, t.severity, t.details, t.resolved_at, t.resolution)
  IS DISTINCT FROM
  (EXCLUDED.user_id, EXCLUDED.session_id, EXCLUDED.session_log_id, EXCLUDED.kind, EXCLUDED.severity,
   EXCLUDED.details, EXCLUDED.resolved_at, EXCLUDED.resolution);
