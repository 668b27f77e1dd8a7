-- The salon registry: one row a salon, its values under the environment's names.
-- `version` comes from one sequence for every salon: a salon removed and added again never
-- shows a version a watcher has already seen, so (id, version) always tells a change.
CREATE SEQUENCE salon_versions;

CREATE TABLE salons (
    id text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
    enabled boolean NOT NULL DEFAULT true,
    version bigint NOT NULL DEFAULT nextval('salon_versions'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- Non-secret values as the environment's text: {"SALON_NAME": "Studio Nord", ...}.
    settings jsonb NOT NULL DEFAULT '{}',
    -- Secret values, each a Fernet token under SECRETS_KEY: {"TELEGRAM_BOT_TOKEN": "gAAAA...", ...}.
    secrets jsonb NOT NULL DEFAULT '{}'
);
