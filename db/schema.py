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
