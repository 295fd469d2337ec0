"""Reading the seed-004 coefficient CSVs: the real release, and clear errors for bad files."""

import pytest

from appshot_model.core.errors import AppshotInputError
from appshot_model.sessions.coefficients import DECILES, read_coefficients


def test_real_release_is_read_in_full(release):
    assert len(release.arrivals) == 10 and [r.decile for r in release.arrivals] == list(DECILES)
    assert release.arrivals[0].peak_loc == pytest.approx(1.2178623325453113)
    assert all(r.nonpeak_alpha == 1.765 for r in release.arrivals)
    assert len(release.session_percent) == 30 and sum(release.session_percent.values()) == pytest.approx(100)
    clash = release.mixtures["Clash of Clans"]
    assert len(clash.residuals) == 3 and clash.residuals[2][2] == pytest.approx(0.008273359600539288)
    assert release.mixtures["Apple iCloud"].residuals[0][0] == pytest.approx(5.027027027027027)
    assert len(release.mixtures["Apple iCloud"].residuals) == 1
    assert release.power_laws["WhatsApp"][1] < 0


def test_tiny_release(tiny_coefficients):
    assert tiny_coefficients.mixtures["Alpha"].residuals == ((6.0, 0.1, 0.25),)
    assert tiny_coefficients.power_laws["Beta"] == (10000.0, 0.5)


@pytest.mark.parametrize("file, old, new, expected", [
    ("sessions_share", "Alpha,60,30", "Alpha,sixty,30",
     r"sessions_share.csv: column 'sessions%', row 2: value 'sixty' is not valid; expected a number"),
    ("sessions_share", "Beta,30", "Beta,50", r"column 'sessions%' sums to 110"),
    ("sessions_share", "Beta,30,70\n", "Beta,30,70\nAlpha,1,1\n", r"column 'app', row 4: value 'Alpha'.*each app once"),
    ("sessions_share", "app,sessions%,traffic%", "app,sessions,traffic%", r"missing column\(s\) \['sessions%'\]"),
    ("arrival_coefs", "0.3,peak,-,6.0", "0.3,peak,-,-6.0",
     r"arrival_coefs.csv: column 'loc', row 6: value '-6.0' is not valid; expected a number > 0"),
    ("arrival_coefs", "1.0,nonpeak,1.765,0.0,5.0\n", "", r"no 'nonpeak' row for decile\(s\) \[1.0\]"),
    ("arrival_coefs", "0.5,peak", "0.55,peak", r"column 'decile', row 10: value '0.55'"),
    ("arrival_coefs", "0.2,nonpeak,1.765", "0.2,nonpeak,0.9", r"Pareto shape > 1"),
    ("pdf_coefs", "6.0,0.1,0.25", "6.0,-,0.25", r"pdf_coefs.csv: column 's_0', row 2: value '-'.*all '-'"),
    ("pdf_coefs", "Beta,6.0,0.8", "Beta,6.0,0", r"column 's_g', row 3: value '0'"),
    ("pdf_coefs", "u_1,s_1,w_1", "u_1,s_1,x_1", r"residual component 1 lacks column\(s\) \['w_1'\]"),
    ("duration_coefs", "Alpha,1000,1.0", "Alpha,1000,0", r"column 'b', row 2: value '0'.*non-zero exponent"),
    ("duration_coefs", "Alpha,1000,1.0", "Alpha,1000", r"row 2 has 2 fields, the header has 3"),
])
def test_bad_files_name_file_column_and_row(tmp_path, write_release, file, old, new, expected):
    folder = write_release(tmp_path / "bad", {file: (old, new)})
    with pytest.raises(AppshotInputError, match=expected):
        read_coefficients(folder)


def test_missing_file_and_folder(tmp_path, write_release):
    folder = write_release(tmp_path / "c")
    (folder / "pdf_coefs.csv").unlink()
    with pytest.raises(AppshotInputError, match=r"pdf_coefs.csv does not exist"):
        read_coefficients(folder)
    with pytest.raises(AppshotInputError, match="does not exist"):
        read_coefficients(tmp_path / "nowhere")
