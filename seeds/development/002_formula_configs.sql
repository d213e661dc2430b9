-- Development seed: formulas (built-in and per lifter, one with two versions) and
-- programs that pin a formula version. Idempotent like 001_users.sql.

INSERT INTO formula_configs AS t
  (id, user_id, name, formula, parameters, is_default, family_id, version, supersedes_id, change_note)
VALUES
  -- Built-in formulas (user_id NULL), shared by every lifter. Epley is the default.
  ('33333333-3333-4333-8333-000000000001', NULL, 'Epley', 'epley',
   '{"valid_reps": {"min": 1, "max": 10}}',
   true,  '33333333-3333-4333-8333-000000000001', 1, NULL, NULL),
  ('33333333-3333-4333-8333-000000000002', NULL, 'Brzycki', 'brzycki',
   '{"valid_reps": {"min": 1, "max": 10}}',
   false, '33333333-3333-4333-8333-000000000002', 1, NULL, NULL),
  -- 5/3/1 waves, version 1 and the version 2 that replaced it (same family).
  ('33333333-3333-4333-8333-000000000003', NULL, '5/3/1 waves', 'percentage_wave',
   '{"training_max_pct": 0.90, "rounding": {"kg": 2.5, "lb": 5},
     "weeks": [[0.65, 0.75, 0.85], [0.70, 0.80, 0.90], [0.75, 0.85, 0.95], [0.40, 0.50, 0.60]],
     "last_set_amrap": true}',
   false, '33333333-3333-4333-8333-000000000003', 1, NULL, NULL),
  ('33333333-3333-4333-8333-000000000004', NULL, '5/3/1 waves', 'percentage_wave',
   '{"training_max_pct": 0.85, "rounding": {"kg": 2.5, "lb": 5},
     "weeks": [[0.65, 0.75, 0.85], [0.70, 0.80, 0.90], [0.75, 0.85, 0.95], [0.40, 0.50, 0.60]],
     "last_set_amrap": true, "deload_amrap": false}',
   false, '33333333-3333-4333-8333-000000000003', 2, '33333333-3333-4333-8333-000000000003',
   'Training max 90 % -> 85 %; no AMRAP in the deload week'),
  -- Ada's own RPE chart, her default.
  ('33333333-3333-4333-8333-000000000005', '11111111-1111-4111-8111-000000000001', 'Ada RPE chart', 'rpe_table',
   '{"rounding": 2.5, "table": {"10": [1.000, 0.955, 0.922, 0.892, 0.863], "9": [0.955, 0.922, 0.892, 0.863, 0.837], "8": [0.922, 0.892, 0.863, 0.837, 0.811]}}',
   true,  '33333333-3333-4333-8333-000000000005', 1, NULL, NULL),
  -- Ben's linear progression (lb), his default.
  ('33333333-3333-4333-8333-000000000006', '11111111-1111-4111-8111-000000000002', 'Linear 5x5', 'linear_progression',
   '{"sets": 5, "reps": 5, "unit": "lb", "increment": {"squat": 5, "bench_press": 5, "deadlift": 10, "overhead_press": 5},
     "deload": {"after_failures": 3, "pct": 0.90}, "bar_weight": 45}',
   true,  '33333333-3333-4333-8333-000000000006', 1, NULL, NULL)
ON CONFLICT (id) DO UPDATE SET
  user_id       = EXCLUDED.user_id,
  name          = EXCLUDED.name,
  formula       = EXCLUDED.formula,
  parameters    = EXCLUDED.parameters,
  is_default    = EXCLUDED.is_default,
  family_id     = EXCLUDED.family_id,
  version       = EXCLUDED.version,
  supersedes_id = EXCLUDED.supersedes_id,
  change_note   = EXCLUDED.change_note
WHERE (t.user_id, t.name, t.formula, t.parameters, t.is_default, t.family_id, t.version, t.supersedes_id, t.change_note)
  IS DISTINCT FROM
  (EXCLUDED.user_id, EXCLUDED.name, EXCLUDED.formula, EXCLUDED.parameters, EXCLUDED.is_default,
   EXCLUDED.family_id, EXCLUDED.version, EXCLUDED.supersedes_id, EXCLUDED.change_note);

-- Ada's 5/3/1 Boring But Big: version 1 (archived) used formula version 1; she moved
-- to version 2 of the program when the formula changed. Ben runs a 5x5.
INSERT INTO programs AS t
  (id, user_id, formula_config_id, slug, name, version, status, weeks, days_per_week, starts_on, schedule, settings)
VALUES
  ('44444444-4444-4444-8444-000000000001', '11111111-1111-4111-8111-000000000001', '33333333-3333-4333-8333-000000000003',
   '531-bbb', '5/3/1 Boring But Big', 1, 'archived', 4, 3, '2025-11-03',
   '[{"week": 1, "days": [{"day": 1, "main": "squat"}, {"day": 2, "main": "bench_press"}, {"day": 3, "main": "deadlift"}]}]',
   '{"assistance": {"sets": 5, "reps": 10, "pct": 0.50}}'),
  ('44444444-4444-4444-8444-000000000002', '11111111-1111-4111-8111-000000000001', '33333333-3333-4333-8333-000000000004',
   '531-bbb', '5/3/1 Boring But Big', 2, 'active', 4, 3, '2026-01-05',
   '[{"week": 1, "days": [{"day": 1, "main": "squat"}, {"day": 2, "main": "bench_press"}, {"day": 3, "main": "deadlift"}]}]',
   '{"assistance": {"sets": 5, "reps": 10, "pct": 0.60}}'),
  ('44444444-4444-4444-8444-000000000003', '11111111-1111-4111-8111-000000000002', '33333333-3333-4333-8333-000000000006',
   'linear-5x5', 'Linear 5x5', 1, 'active', 12, 3, '2026-01-05',
   '[{"day": "A", "lifts": ["squat", "bench_press"]}, {"day": "B", "lifts": ["squat", "overhead_press", "deadlift"]}]',
   '{"alternate_days": true}')
ON CONFLICT (id) DO UPDATE SET
  user_id           = EXCLUDED.user_id,
  formula_config_id = EXCLUDED.formula_config_id,
  slug              = EXCLUDED.slug,
  name              = EXCLUDED.name,
  version           = EXCLUDED.version,
  status            = EXCLUDED.status,
  weeks             = EXCLUDED.weeks,
  days_per_week     = EXCLUDED.days_per_week,
  starts_on         = EXCLUDED.starts_on,
  schedule          = EXCLUDED.schedule,
  settings          = EXCLUDED.settings
WHERE (t.user_id, t.formula_config_id, t.slug, t.name, t.version, t.status, t.weeks, t.days_per_week,
       t.starts_on, t.schedule, t.settings)
  IS DISTINCT FROM
  (EXCLUDED.user_id, EXCLUDED.formula_config_id, EXCLUDED.slug, EXCLUDED.name, EXCLUDED.version,
   EXCLUDED.status, EXCLUDED.weeks, EXCLUDED.days_per_week, EXCLUDED.starts_on, EXCLUDED.schedule,
   EXCLUDED.settings);
