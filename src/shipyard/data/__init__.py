"""Datasets as data: content digests, schemas, profiles and the differences between profiles.

Pure functions over local data: no store, no network. numpy and pyarrow are imported on first
use only (files and folders need neither).

- :func:`digest_file`, :func:`digest_folder`, :func:`digest_glob` with :class:`DigestCache`
  (``shipyard.data.digest``, ``shipyard.data.cache``): SHA-256 of files and sets of files.
- :func:`digest_table`, :func:`verify_table`, :func:`recipe_of` (``shipyard.data.table_digest``):
  SHA-256 of tabular data in pandas, polars, Arrow or numpy, the same for the same data in any of
  them; each digest names the recipe that made it, so one recorded earlier still checks.
- :func:`profile_table`, :func:`profile_file`, :func:`schema_of` (``shipyard.data.profile``).
- :func:`describe_table`, :func:`describe_file` (``shipyard.data.describe``): the digest and the
  profile together, as logging a dataset needs them, in less time than the two calls.
- :func:`to_arrow` (``shipyard.data.tables``): the Arrow table all of the above work on; convert
  once and pass the table when both digesting and profiling the same data.
- :func:`diff_profiles`, :func:`render_diff` (``shipyard.data.diff``).
"""

from __future__ import annotations

from shipyard.data.cache import DigestCache, default_cache_path
from shipyard.data.describe import describe_file, describe_table
from shipyard.data.diff import ColumnDiff, DatasetDiff, Shift, diff_profiles
from shipyard.data.diff import render as render_diff
from shipyard.data.digest import FileDigest, FolderDigest, digest_file, digest_folder, digest_glob, glob_root
from shipyard.data.profile import profile_file, profile_table, schema_of
from shipyard.data.table_digest import digest_table, recipe_of, verify_table
from shipyard.data.tables import to_arrow

__all__ = [
    "ColumnDiff",
    "DatasetDiff",
    "DigestCache",
    "FileDigest",
    "FolderDigest",
    "Shift",
    "default_cache_path",
    "describe_file",
    "describe_table",
    "diff_profiles",
    "digest_file",
    "digest_folder",
    "digest_glob",
    "digest_table",
    "glob_root",
    "profile_file",
    "profile_table",
    "recipe_of",
    "render_diff",
    "schema_of",
    "to_arrow",
    "verify_table",
]
