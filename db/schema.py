"""The database schema, as ordered ``sqlite_utils.Migrations``.

A migration once shipped is never edited: change the schema by appending a new
one. Tables are STRICT so SQLite refuses a value of the wrong type, and every
foreign key is declared so ``PRAGMA foreign_keys=ON`` guards references.
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

migrations = Migrations("bonescan")


@migrations(name="0001_patients_studies_views_treatments")
def _patients_studies_views_treatments(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE patients (
            id INTEGER PRIMARY KEY,
            pseudonym TEXT NOT NULL UNIQUE,
            name TEXT,                      -- identifying; never logged
            external_id TEXT,               -- e.g. DICOM PatientID; identifying
            sex TEXT CHECK (sex IN ('M', 'F', 'O')),
            birth_year INTEGER,
            primary_tumour TEXT,
            synthetic INTEGER NOT NULL DEFAULT 0 CHECK (synthetic IN (0, 1)),
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        ) STRICT;

        CREATE TABLE studies (
            id INTEGER PRIMARY KEY,
            patient_id INTEGER NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
            study_date TEXT,                -- YYYY-MM-DD
            injection_delay_h REAL,
            source_name TEXT NOT NULL,
            source_sha256 TEXT NOT NULL UNIQUE,
            source_format TEXT NOT NULL,
            pixel_spacing_row_mm REAL,
            pixel_spacing_col_mm REAL,
            manufacturer TEXT,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        ) STRICT;
        CREATE INDEX studies_patient_date ON studies(patient_id, study_date);

        CREATE TABLE views (
            id INTEGER PRIMARY KEY,
            study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
            view TEXT NOT NULL CHECK (view IN ('ANT', 'POST')),
            rows INTEGER NOT NULL,
            cols INTEGER NOT NULL,
            dtype TEXT NOT NULL CHECK (dtype IN ('uint16', 'float32')),
            counts_zlib BLOB NOT NULL,      -- little-endian counts of that dtype, zlib (lossless)
            UNIQUE (study_id, view)
        ) STRICT;

        CREATE TABLE treatments (
            id INTEGER PRIMARY KEY,
            patient_id INTEGER NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
            agent TEXT NOT NULL,
            start_date TEXT NOT NULL,       -- YYYY-MM-DD
            end_date TEXT,                  -- YYYY-MM-DD; NULL while ongoing
            dose TEXT,
            note TEXT,
            CHECK (end_date IS NULL OR end_date >= start_date)
        ) STRICT;
        CREATE INDEX treatments_patient ON treatments(patient_id, start_date);
        """
    )


@migrations(name="0002_analyses_lesions_audit")
def _analyses_lesions_audit(db: Database) -> None:
    # "Latest analysis of a study" is the one with the highest id (ids only grow while
    # rows are inserted), so analyses(study_id, id) answers it with one index seek.
    db.executescript(
        """
        CREATE TABLE analyses (
            id INTEGER PRIMARY KEY,
            study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
            model_version TEXT NOT NULL,
            weights_sha256 TEXT,
            device TEXT NOT NULL,
            timings_json TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(timings_json)),
            metastasis_probability REAL
                CHECK (metastasis_probability IS NULL OR metastasis_probability BETWEEN 0 AND 1),
            bladder_probability REAL
                CHECK (bladder_probability IS NULL OR bladder_probability BETWEEN 0 AND 1),
            bstbi_ant_1 REAL CHECK (bstbi_ant_1 IS NULL OR bstbi_ant_1 BETWEEN 0 AND 1),
            bstbi_ant_2 REAL CHECK (bstbi_ant_2 IS NULL OR bstbi_ant_2 BETWEEN 0 AND 1),
            bstbi_post_1 REAL CHECK (bstbi_post_1 IS NULL OR bstbi_post_1 BETWEEN 0 AND 1),
            bstbi_post_2 REAL CHECK (bstbi_post_2 IS NULL OR bstbi_post_2 BETWEEN 0 AND 1),
            bstbi REAL CHECK (bstbi IS NULL OR bstbi BETWEEN 0 AND 1),
            hotspots INTEGER CHECK (hotspots IS NULL OR hotspots >= 0),
            lesion_area_cm2 REAL CHECK (lesion_area_cm2 IS NULL OR lesion_area_cm2 >= 0),
            quality TEXT NOT NULL CHECK (quality <> ''),   -- 'ok' or the reason it is not
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        ) STRICT;
        CREATE INDEX analyses_study_latest ON analyses(study_id, id);

        CREATE TABLE masks (
            id INTEGER PRIMARY KEY,
            analysis_id INTEGER NOT NULL REFERENCES analyses(id) ON DELETE CASCADE,
            view TEXT NOT NULL CHECK (view IN ('ANT', 'POST')),
            rows INTEGER NOT NULL,
            cols INTEGER NOT NULL,
            labels_zlib BLOB NOT NULL      -- uint8 label mask (0 bg, 1 metastasis, 2 bladder), zlib
        ) STRICT;
        CREATE UNIQUE INDEX masks_analysis_view ON masks(analysis_id, view);

        CREATE TABLE lesions (
            id INTEGER PRIMARY KEY,
            analysis_id INTEGER NOT NULL REFERENCES analyses(id) ON DELETE CASCADE,
            view TEXT NOT NULL CHECK (view IN ('ANT', 'POST')),
            component INTEGER NOT NULL CHECK (component >= 1),
            area_px INTEGER NOT NULL CHECK (area_px >= 0),
            area_cm2 REAL CHECK (area_cm2 IS NULL OR area_cm2 >= 0),
            uptake_ratio REAL,
            skeletal_region TEXT,
            centroid_row REAL,
            centroid_col REAL,
            status TEXT NOT NULL DEFAULT 'model' CHECK (status IN ('model', 'removed', 'added')),
            -- A lesion the physician drew (not a component of the model's mask) keeps its
            -- pixels here: zlib uint8 0/1 of the view's shape. NULL for model lesions.
            drawn_zlib BLOB,
            CHECK (status <> 'added' OR drawn_zlib IS NOT NULL),
            CHECK (status <> 'model' OR drawn_zlib IS NULL)
        ) STRICT;
        -- Also the index for "the lesions of an analysis".
        CREATE UNIQUE INDEX lesions_analysis_component ON lesions(analysis_id, view, component);

        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
            account TEXT NOT NULL CHECK (account <> ''),
            action TEXT NOT NULL,
            entity TEXT NOT NULL,
            entity_id INTEGER,
            before_json TEXT CHECK (before_json IS NULL OR json_valid(before_json)),
            after_json TEXT CHECK (after_json IS NULL OR json_valid(after_json))
        ) STRICT;
        CREATE INDEX audit_log_entity ON audit_log(entity, entity_id, id);
        """
    )


@migrations(name="0003_accounts")
def _accounts(db: Database) -> None:
    # Usernames compare without case ("Dr.Lee" and "dr.lee" are one account) and hold
    # only characters that are safe in logs and audit rows. The hash is argon2id's
    # encoded string (salt and parameters included); a plaintext password cannot pass
    # the GLOB check.
    db.executescript(
        """
        CREATE TABLE accounts (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL UNIQUE COLLATE NOCASE
                CHECK (length(username) BETWEEN 1 AND 64
                       AND username NOT GLOB '*[^A-Za-z0-9._@-]*'),
            role TEXT NOT NULL CHECK (role IN ('admin', 'clinician', 'viewer')),
            password_hash TEXT NOT NULL CHECK (password_hash GLOB '$argon2id$*'),
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
            disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
        ) STRICT;
        """
    )


@migrations(name="0004_studies_display_grey_level_1")
def _studies_display_grey_level_1(db: Database) -> None:
    # An 8-bit export already in the paper's display *is* grey level 1; its pixels
    # (stored as counts) must be shown as they are, not re-windowed, or a burden
    # recomputed from the store would differ from the one computed at upload.
    db.execute(
        "ALTER TABLE studies ADD COLUMN display_grey_level_1 INTEGER NOT NULL DEFAULT 0 "
        "CHECK (display_grey_level_1 IN (0, 1))"
    )


@migrations(name="0005_analyses_metastasis_threshold")
def _analyses_metastasis_threshold(db: Database) -> None:
    # A calibrated classifier calls a scan positive at its own threshold, not at 0.5:
    # each analysis keeps the one it was decided with, so that the cohort's and the
    # pages' positive/negative stays what the model said, whichever model comes later.
    # Analyses stored before were all decided at the paper's 0.5.
    db.execute(
        "ALTER TABLE analyses ADD COLUMN metastasis_threshold REAL NOT NULL DEFAULT 0.5 "
        "CHECK (metastasis_threshold BETWEEN 0 AND 1)"
    )


@migrations(name="0006_dicom_sources")
def _dicom_sources(db: Database) -> None:
    # Studies that come from a PACS keep what is needed to send results back into the
    # same study (its Study Instance UID) and to recognise an instance received twice
    # (its SOP Instance UID), plus the AE title that sent it, shown on the pages.
    db.executescript(
        """
        ALTER TABLE studies ADD COLUMN study_instance_uid TEXT;
        ALTER TABLE studies ADD COLUMN accession_number TEXT;
        ALTER TABLE studies ADD COLUMN source_ae TEXT;
        CREATE TABLE study_instances (
            sop_instance_uid TEXT PRIMARY KEY,
            sop_class_uid TEXT NOT NULL,
            study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE
        ) STRICT;
        CREATE INDEX study_instances_study ON study_instances(study_id);
        CREATE INDEX studies_study_instance_uid ON studies(study_instance_uid);
        """
    )


@migrations(name="0007_analyses_quality_cautions")
def _analyses_quality_cautions(db: Database) -> None:
    # A scan that passes the quality gate may still carry cautions a physician must see
    # (a saturated bladder or injection site, an acquisition that stops above the feet).
    # They are kept with the analysis, as a JSON list of sentences, so that every page,
    # report and export that shows the verdict shows them too. Older analyses had none
    # stored.
    db.execute(
        "ALTER TABLE analyses ADD COLUMN quality_cautions_json TEXT NOT NULL DEFAULT '[]' "
        "CHECK (json_valid(quality_cautions_json) AND json_type(quality_cautions_json) = 'array')"
    )


@migrations(name="0008_centre_review_models_jobs")
def _centre_review_models_jobs(db: Database) -> None:
    # The centre's own loop (issue 24): a physician's edits of the masks, the study
    # marked reviewed with the physician's scan label, the model versions with the one in
    # use, and the background jobs (one fine-tune at a time).
    #
    # mask_edits: erasing part of a mark or painting/erasing the bladder, kept beside the
    # model's masks (never over them) and applied in id order after lesion statuses and
    # drawn lesions. An undone edit keeps its row (undone = 1) so the history stays whole.
    #
    # model_versions: every model folder the store knows (the shipped one, each
    # candidate); its card (parent, data, steps, figures) and the sha256 of its weights.
    # model_activations: each promotion or rollback; the newest row names the model in
    # use, so a switch is one INSERT, atomic for every process reading the store.
    #
    # jobs: at most one queued or running job (partial unique index); the runner's pid
    # and its out folder let a restarted server tell a dead job from a live one and
    # resume it from its checkpoint.
    db.executescript(
        """
        CREATE TABLE mask_edits (
            id INTEGER PRIMARY KEY,
            analysis_id INTEGER NOT NULL REFERENCES analyses(id) ON DELETE CASCADE,
            view TEXT NOT NULL CHECK (view IN ('ANT', 'POST')),
            action TEXT NOT NULL CHECK (action IN ('erase', 'bladder', 'erase_bladder')),
            pixels_zlib BLOB NOT NULL,      -- zlib uint8 0/1 of the view's mask shape
            account TEXT NOT NULL CHECK (account <> ''),
            at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
            undone INTEGER NOT NULL DEFAULT 0 CHECK (undone IN (0, 1))
        ) STRICT;
        CREATE INDEX mask_edits_analysis ON mask_edits(analysis_id, id);

        ALTER TABLE analyses ADD COLUMN reviewed_by TEXT;
        ALTER TABLE analyses ADD COLUMN reviewed_at TEXT;
        -- the physician's scan label (1 metastasis, 0 none), set when marked reviewed
        ALTER TABLE analyses ADD COLUMN reviewed_metastasis INTEGER
            CHECK (reviewed_metastasis IS NULL OR reviewed_metastasis IN (0, 1));

        CREATE TABLE model_versions (
            id INTEGER PRIMARY KEY,
            version TEXT NOT NULL UNIQUE CHECK (version <> ''),
            path TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('shipped', 'candidate')),
            parent TEXT REFERENCES model_versions(version),
            weights_sha256 TEXT NOT NULL,
            card_json TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(card_json)),
            created_by TEXT NOT NULL CHECK (created_by <> ''),
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        ) STRICT;

        CREATE TABLE model_activations (
            id INTEGER PRIMARY KEY,
            version TEXT NOT NULL REFERENCES model_versions(version),
            action TEXT NOT NULL CHECK (action IN ('promote', 'rollback')),
            account TEXT NOT NULL CHECK (account <> ''),
            at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        ) STRICT;

        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('fine-tune', 'reanalyse')),
            state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'finished', 'failed')),
            args_json TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(args_json)),
            out_dir TEXT NOT NULL,
            pid INTEGER,
            started_by TEXT NOT NULL CHECK (started_by <> ''),
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
            started_at TEXT,
            finished_at TEXT,
            message TEXT NOT NULL DEFAULT '',
            result_json TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(result_json))
        ) STRICT;
        CREATE UNIQUE INDEX jobs_one_active ON jobs((1)) WHERE state IN ('queued', 'running');
        """
    )


@migrations(name="0009_bone_scan_index")
def _bone_scan_index(db: Database) -> None:
    # Issue 25: the skeleton's regions and the Bone Scan Index (docs/bsi.md).
    #
    # analyses: bsi is the index in percent of skeletal mass, stored only for a reliable
    # analysis (as bstbi); raw_bsi the model's index whatever the quality gate said (for
    # inspection; a review does not change it). bsi_regions is a JSON object
    # {region: {"involvement": fraction, "percent": contribution}} with every region
    # seen on a readable skeleton map, stored with bsi (NULL where bsi is). anatomy_sha256
    # names the skeleton network's weights. Older analyses had no skeleton: all NULL.
    #
    # lesions: the patient's side of the lesion's region ('left', 'right', 'mid') and
    # where the region came from ('skeleton' map or body 'proportions'); NULL for rows
    # stored before this migration and for a side the proportions do not give.
    #
    # skeleton_maps: the skeleton network's uint8 label map of each view it could read
    # (core.anatomy.regions.LABELS, 0 background), zlib of its C-order bytes as masks
    # are; its shape is its view's mask's (masks.rows, masks.cols), so a map is only
    # stored beside a mask of the same view.
    db.executescript(
        """
        ALTER TABLE analyses ADD COLUMN bsi REAL CHECK (bsi IS NULL OR bsi BETWEEN 0 AND 100);
        ALTER TABLE analyses ADD COLUMN raw_bsi REAL
            CHECK (raw_bsi IS NULL OR raw_bsi BETWEEN 0 AND 100);
        ALTER TABLE analyses ADD COLUMN bsi_regions TEXT
            CHECK (bsi_regions IS NULL
                   OR (json_valid(bsi_regions) AND json_type(bsi_regions) = 'object'));
        ALTER TABLE analyses ADD COLUMN anatomy_sha256 TEXT;

        ALTER TABLE lesions ADD COLUMN side TEXT
            CHECK (side IS NULL OR side IN ('left', 'right', 'mid'));
        ALTER TABLE lesions ADD COLUMN region_source TEXT
            CHECK (region_source IS NULL OR region_source IN ('skeleton', 'proportions'));

        CREATE TABLE skeleton_maps (
            id INTEGER PRIMARY KEY,
            analysis_id INTEGER NOT NULL REFERENCES analyses(id) ON DELETE CASCADE,
            view TEXT NOT NULL CHECK (view IN ('ANT', 'POST')),
            labels_zlib BLOB NOT NULL,     -- uint8 skeleton label map, zlib
            UNIQUE (analysis_id, view)
        ) STRICT;
        """
    )


@migrations(name="0010_analyses_bsi_withheld")
def _analyses_bsi_withheld(db: Database) -> None:
    # The BSI is not reported for a patient younger than 18 (core.anatomy.bsi.ADULT_AGE:
    # adult bone weights, validated in adults, a child's hot growth plates). The sentence
    # that says so is kept with the analysis, so that a review's recomputed burden
    # withholds it too and every page says why there is no index. NULL: not withheld
    # (every analysis stored before this migration).
    db.execute(
        "ALTER TABLE analyses ADD COLUMN bsi_withheld TEXT "
        "CHECK (bsi_withheld IS NULL OR length(trim(bsi_withheld)) > 0)"
    )
