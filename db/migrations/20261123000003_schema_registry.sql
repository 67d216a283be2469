-- The schema registry served by `orderflow registry` (schemas::registry), Confluent-compatible.
--
-- A schema has one global id, shared by every subject that registers it: schemas are identified by the
-- SHA-256 of their Avro parsing canonical form. A subject is an ordered list of versions, each pointing at a
-- schema id; a soft-deleted version keeps its row with `deleted = true`, a hard delete removes the row.

CREATE TABLE registry_schemas (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schema_type text NOT NULL DEFAULT 'AVRO',
    -- the text as first registered; what clients get back
    schema      text NOT NULL,
    -- the Avro parsing canonical form, which decides identity
    canonical   text NOT NULL,
    fingerprint bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT registry_schemas_fingerprint_unique UNIQUE (fingerprint)
);

CREATE TABLE registry_subject_versions (
    subject    text NOT NULL,
    version    integer NOT NULL CHECK (version > 0),
    schema_id  integer NOT NULL REFERENCES registry_schemas (id),
    deleted    boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject, version)
);

CREATE INDEX registry_subject_versions_schema_id ON registry_subject_versions (schema_id);

-- Compatibility levels: the global one (a single row) and per subject.
CREATE TABLE registry_global_config (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    compatibility text NOT NULL CHECK (compatibility IN ('NONE', 'BACKWARD', 'BACKWARD_TRANSITIVE', 'FORWARD',
                                                         'FORWARD_TRANSITIVE', 'FULL', 'FULL_TRANSITIVE'))
);

CREATE TABLE registry_subject_config (
    subject       text PRIMARY KEY,
    compatibility text NOT NULL CHECK (compatibility IN ('NONE', 'BACKWARD', 'BACKWARD_TRANSITIVE', 'FORWARD',
                                                         'FORWARD_TRANSITIVE', 'FULL', 'FULL_TRANSITIVE'))
);
