-- Privacy (docs/privacy.md): encrypted shadows of personal-data columns, sealed by the
-- application (carecircle.platform.privacy.crypto.PiiCipher, AES-256-GCM with a key-id
-- prefix), and keyed-HMAC blind indexes where a value must be found by lookup.
-- Phase 1: the plaintext columns stay (API, alerts and dispatch read them today);
-- `carecircle privacy encrypt-existing` fills these columns.  Phase 2 moves readers to
-- the sealed columns and drops or blanks the plaintext ones.
-- A national ID number is stored only sealed: there is no plaintext column for it.

ALTER TABLE residents
    ADD COLUMN display_name_enc bytea,
    ADD COLUMN id_number_enc    bytea,
    ADD COLUMN id_number_bidx   bytea;
CREATE UNIQUE INDEX residents_id_number_bidx_idx ON residents (id_number_bidx)
    WHERE id_number_bidx IS NOT NULL;

ALTER TABLE responders
    ADD COLUMN display_name_enc bytea,
    ADD COLUMN phone_enc        bytea,
    ADD COLUMN phone_bidx       bytea;
CREATE INDEX responders_phone_bidx_idx ON responders (phone_bidx) WHERE phone_bidx IS NOT NULL;

ALTER TABLE family_members
    ADD COLUMN display_name_enc bytea,
    ADD COLUMN phone_enc        bytea,
    ADD COLUMN phone_bidx       bytea;
CREATE INDEX family_members_phone_bidx_idx ON family_members (phone_bidx)
    WHERE phone_bidx IS NOT NULL;

ALTER TABLE sites
    ADD COLUMN address_enc bytea;
