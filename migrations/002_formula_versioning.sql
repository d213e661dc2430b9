-- 002_formula_versioning: versioned formulas and training programs.
--
-- Editing a formula used to change it in place, so old sessions silently changed
-- meaning. From now on a formula is a family of immutable versions: editing one
-- inserts version N+1 (supersedes_id -> version N, same family_id), and a program
-- pins the exact formula version it was written against.

-- formula_configs: family and version -------------------------------------------

ALTER TABLE formula_configs
  -- The id of the family's first version (a first version is its own family).
  ADD COLUMN family_id     uuid,
  ADD COLUMN version       integer NOT NULL DEFAULT 1 CHECK (version >= 1),
  -- The version this one replaces; NULL for a first version.
  ADD COLUMN supersedes_id uuid REFERENCES formula_configs (id),
  ADD COLUMN change_note   text;

-- Every existing formula becomes version 1 of its own family. This is a schema
-- change, not an edit by the user, so leave updated_at alone.
ALTER TABLE formula_configs DISABLE TRIGGER formula_configs_set_updated_at;
UPDATE formula_configs SET family_id = id WHERE family_id IS NULL;
ALTER TABLE formula_configs ENABLE TRIGGER formula_configs_set_updated_at;

ALTER TABLE formula_configs
  ALTER COLUMN family_id SET NOT NULL,
  ADD CONSTRAINT formula_configs_family_id_fkey
    FOREIGN KEY (family_id) REFERENCES formula_configs (id),
  ADD CONSTRAINT formula_configs_family_version_key UNIQUE (family_id, version),
  -- Version 1 <=> the family's root <=> supersedes nothing.
  ADD CONSTRAINT formula_configs_version_root_check
    CHECK ((version = 1) = (family_id = id) AND (version = 1) = (supersedes_id IS NULL));

-- A new first version may omit family_id: it defaults to the row's own id.
CREATE FUNCTION formula_configs_default_family() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  NEW.family_id := NEW.id;
  RETURN NEW;
END;
$$;

CREATE TRIGGER formula_configs_default_family
  BEFORE INSERT ON formula_configs
  FOR EACH ROW WHEN (NEW.family_id IS NULL) EXECUTE FUNCTION formula_configs_default_family();

-- Names are now shared by the versions of a formula: unique per owner and version.
DROP INDEX formula_configs_owner_name_key;
CREATE UNIQUE INDEX formula_configs_owner_name_version_key
  ON formula_configs (user_id, lower(name), version) NULLS NOT DISTINCT
  WHERE deleted_at IS NULL;
CREATE INDEX formula_configs_supersedes_id_idx ON formula_configs (supersedes_id);

-- programs -----------------------------------------------------------------------
-- A training program (for example "5/3/1 Boring But Big"), itself versioned: a
-- lifter keeps every version of a program they tweaked, and at most one version of
-- each program is active. schedule is the week/day template, for example
--   [{"week": 1, "days": [{"day": 1, "lifts": [{"lift": "squat", "sets": [...]}]}]}]
-- and settings holds program-wide options (deload weeks, rounding, assistance).

CREATE TABLE programs (
  id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id            uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- The exact formula version the program computes loads with. NO ACTION (not
  -- RESTRICT) so that deleting a user, which cascades to both tables, succeeds.
  formula_config_id  uuid        NOT NULL REFERENCES formula_configs (id),
  slug               text        NOT NULL CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
  name               text        NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100),
  version            integer     NOT NULL DEFAULT 1 CHECK (version >= 1),
  status             text        NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'archived')),
  weeks              smallint    NOT NULL CHECK (weeks BETWEEN 1 AND 52),
  days_per_week      smallint    NOT NULL CHECK (days_per_week BETWEEN 1 AND 7),
  starts_on          date,
  schedule           jsonb       NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(schedule) = 'array'),
  settings           jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(settings) = 'object'),
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  deleted_at         timestamptz,
  CONSTRAINT programs_user_slug_version_key UNIQUE (user_id, slug, version)
);

COMMENT ON TABLE programs IS 'Versioned training programs; each version pins one formula_configs version.';

-- At most one active version of a program per lifter.
CREATE UNIQUE INDEX programs_one_active_key
  ON programs (user_id, slug)
  WHERE status = 'active' AND deleted_at IS NULL;
CREATE INDEX programs_user_live_idx ON programs (user_id) WHERE deleted_at IS NULL;
CREATE INDEX programs_formula_config_id_idx ON programs (formula_config_id);

CREATE TRIGGER programs_set_updated_at
  BEFORE UPDATE ON programs
  FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION set_updated_at();

-- sessions: where in a program a session belongs ---------------------------------

ALTER TABLE sessions
  ADD COLUMN program_id   uuid     REFERENCES programs (id) ON DELETE SET NULL,
  ADD COLUMN program_week smallint CHECK (program_week BETWEEN 1 AND 52),
  ADD COLUMN program_day  smallint CHECK (program_day BETWEEN 1 AND 7);

CREATE INDEX sessions_program_id_idx ON sessions (program_id, program_week, program_day);
