-- Development seed: lifters and their maxes.
--
-- Idempotent: fixed ids, and ON CONFLICT (id) DO UPDATE ... WHERE ... IS DISTINCT FROM
-- so that a second run touches no row, while an edited seed (which tidemark runs
-- again because its checksum changed) brings the rows in line with the file.
--
-- Id scheme of the development seeds (valid version-4 UUIDs, readable in psql):
--   11111111-... users                 44444444-... programs
--   22222222-... lifter_maxes          55555555-... sessions
--   33333333-... formula_configs       66666666-... session_logs
--   77777777-... performance_metrics   88888888-... recovery_snapshots
--   99999999-... edge_cases

INSERT INTO users AS t
  (id, email, display_name, unit, bodyweight, birth_year, sex, timezone, deleted_at)
VALUES
  ('11111111-1111-4111-8111-000000000001', 'ada@example.com',    'Ada Park',    'kg', 68.50,  1994, 'female',      'Europe/Berlin',   NULL),
  ('11111111-1111-4111-8111-000000000002', 'ben@example.com',    'Ben Okafor',  'lb', 198.40, 1988, 'male',        'America/Chicago', NULL),
  -- A new sign-up with no training data yet.
  ('11111111-1111-4111-8111-000000000003', 'carmen@example.com', 'Carmen Ruiz', 'kg', NULL,   NULL, 'unspecified', 'UTC',             NULL),
  -- A deleted account (soft delete): hidden by the WHERE deleted_at IS NULL indexes.
  ('11111111-1111-4111-8111-000000000004', 'dana@example.com',   'Dana Kim',    'kg', 61.00,  1999, 'female',      'Asia/Seoul',      '2025-11-30 12:00:00+00')
ON CONFLICT (id) DO UPDATE SET
  email        = EXCLUDED.email,
  display_name = EXCLUDED.display_name,
  unit         = EXCLUDED.unit,
  bodyweight   = EXCLUDED.bodyweight,
  birth_year   = EXCLUDED.birth_year,
  sex          = EXCLUDED.sex,
  timezone     = EXCLUDED.timezone,
  deleted_at   = EXCLUDED.deleted_at
WHERE (t.email, t.display_name, t.unit, t.bodyweight, t.birth_year, t.sex, t.timezone, t.deleted_at)
  IS DISTINCT FROM
  (EXCLUDED.email, EXCLUDED.display_name, EXCLUDED.unit, EXCLUDED.bodyweight, EXCLUDED.birth_year,
   EXCLUDED.sex, EXCLUDED.timezone, EXCLUDED.deleted_at);

-- Ada trains in kg: tested maxes, training maxes at 90 % rounded to 2.5 kg, and one
-- max estimated from a rep set (120 kg x 5, Epley: 120 * (1 + 5/30) = 140).
-- Ben trains in lb.
INSERT INTO lifter_maxes AS t
  (id, user_id, lift, kind, weight, unit, reps, achieved_on, notes, deleted_at)
VALUES
  ('22222222-2222-4222-8222-000000000001', '11111111-1111-4111-8111-000000000001', 'squat',          'one_rep_max',  140.00, 'kg', NULL, '2025-12-01', 'Meet day', NULL),
  ('22222222-2222-4222-8222-000000000002', '11111111-1111-4111-8111-000000000001', 'bench_press',    'one_rep_max',   90.00, 'kg', NULL, '2025-12-01', 'Meet day', NULL),
  ('22222222-2222-4222-8222-000000000003', '11111111-1111-4111-8111-000000000001', 'deadlift',       'one_rep_max',  170.00, 'kg', NULL, '2025-12-01', 'Meet day', NULL),
  ('22222222-2222-4222-8222-000000000004', '11111111-1111-4111-8111-000000000001', 'overhead_press', 'one_rep_max',   57.50, 'kg', NULL, '2025-12-03', NULL, NULL),
  ('22222222-2222-4222-8222-000000000005', '11111111-1111-4111-8111-000000000001', 'squat',          'training_max', 125.00, 'kg', NULL, '2025-12-15', '90 % of 140, rounded down', NULL),
  ('22222222-2222-4222-8222-000000000006', '11111111-1111-4111-8111-000000000001', 'bench_press',    'training_max',  80.00, 'kg', NULL, '2025-12-15', '90 % of 90, rounded down', NULL),
  ('22222222-2222-4222-8222-000000000007', '11111111-1111-4111-8111-000000000001', 'deadlift',       'training_max', 152.50, 'kg', NULL, '2025-12-15', '90 % of 170, rounded down', NULL),
  ('22222222-2222-4222-8222-000000000008', '11111111-1111-4111-8111-000000000001', 'squat',          'estimated',    140.00, 'kg', 5,    '2025-11-20', '120 kg x 5', NULL),
  ('22222222-2222-4222-8222-000000000009', '11111111-1111-4111-8111-000000000002', 'squat',          'one_rep_max',  315.00, 'lb', NULL, '2025-10-18', NULL, NULL),
  ('22222222-2222-4222-8222-000000000010', '11111111-1111-4111-8111-000000000002', 'bench_press',    'one_rep_max',  225.00, 'lb', NULL, '2025-10-18', NULL, NULL),
  ('22222222-2222-4222-8222-000000000011', '11111111-1111-4111-8111-000000000002', 'deadlift',       'one_rep_max',  405.00, 'lb', NULL, '2025-10-20', NULL, NULL),
  -- Entered by mistake and deleted in the app (soft delete).
  ('22222222-2222-4222-8222-000000000012', '11111111-1111-4111-8111-000000000002', 'deadlift',       'one_rep_max',  450.00, 'lb', NULL, '2025-10-20', 'Typo: meant 405', '2025-10-21 08:00:00+00')
ON CONFLICT (id) DO UPDATE SET
  user_id     = EXCLUDED.user_id,
  lift        = EXCLUDED.lift,
  kind        = EXCLUDED.kind,
  weight      = EXCLUDED.weight,
  unit        = EXCLUDED.unit,
  reps        = EXCLUDED.reps,
  achieved_on = EXCLUDED.achieved_on,
  notes       = EXCLUDED.notes,
  deleted_at  = EXCLUDED.deleted_at
WHERE (t.user_id, t.lift, t.kind, t.weight, t.unit, t.reps, t.achieved_on, t.notes, t.deleted_at)
  IS DISTINCT FROM
  (EXCLUDED.user_id, EXCLUDED.lift, EXCLUDED.kind, EXCLUDED.weight, EXCLUDED.unit, EXCLUDED.reps,
   EXCLUDED.achieved_on, EXCLUDED.notes, EXCLUDED.deleted_at);

