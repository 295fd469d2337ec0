"""Releases: versioned, verifiable dataset folders of generated snapshots.

See ``docs/release.md`` for the layout. Main entry points: :func:`publish_release`,
:func:`write_release_dir`, :func:`verify_release`, :func:`write_map_html`.
"""

from appshot_model.release.layout import ReleasePart, list_releases
from appshot_model.release.publish import PublishResult, publish_release, write_release_dir
from appshot_model.release.verify import VerifyReport, verify_release

__all__ = ["PublishResult", "ReleasePart", "VerifyReport", "list_releases", "publish_release",
           "verify_release", "write_release_dir"]
