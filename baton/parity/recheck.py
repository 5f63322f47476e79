"""``recheck``: re-prove parity on production data, and measure how far it has drifted.

Three questions, one verdict:

1. **parity**: does the original still give the bundle's predictions on this data? The
   comparison of :func:`baton.parity.check.check` on the data alone; no search beyond it
   runs (``baton check`` does that, before a deploy).
2. **drift**: per input column, the share of rows outside the proven envelope, the
   population stability index (PSI) against the conversion sample's profile, and the
   unseen categories. A column fails when its outside share exceeds ``max_outside`` or its
   PSI exceeds ``max_psi``. PSI is noisy on few rows: for two samples of n and N rows from
   one distribution over k bins, PSI is about chi-square with k - 1 degrees of freedom
   times (1/n + 1/N). With the 11 bins of a numeric column (10 deciles and missing values)
   and n = N = 300, a healthy column exceeds 0.2 less than once in a thousand (chi-square
   with 10 degrees of freedom beyond 30); so below ``min_rows_psi`` = 300 rows, of the data
   or of the conversion sample, PSI is reported but does not decide.
3. **served** (on records of ``baton serve --record``): did the service serve the bundle's
   outputs on those rows, within the bundle's tolerances?
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from baton.contract import Converter
from baton.envelope import Envelope, Region, _missing, columns_of
from baton.errors import UsageError
from baton.parity.check import check, open_target, run_settings
from baton.parity.compare import compare
from baton.profile import Profile
from baton.results.diff import OutputDiff
from baton.results.drift import MAX_UNSEEN, ColumnDrift, DriftReport
from baton.results.report import Report
from baton.schema import row_values, to_feeds
from baton.tolerance import ToleranceArg, resolve, with_overrides

MAX_OUTSIDE = 0.01
MAX_PSI = 0.2
MIN_ROWS_PSI = 300
#: outside rows whose reasons are listed per column
EXAMPLES = 3


def recheck(model: Any, bundle_or_path: Any, data: Any, *, converter: Converter,
            served: Mapping[str, Any] | None = None, served_digests: Sequence[str] = (),
            max_outside: float = MAX_OUTSIDE, max_psi: float = MAX_PSI,
            min_rows_psi: int = MIN_ROWS_PSI, tolerance: ToleranceArg = None,
            atol: float | None = None, rtol: float | None = None,
            data_name: str | None = None, provider: str = "cpu") -> Report:
    """Parity of ``model`` against its bundle on ``data`` (no search), the drift of
    ``data`` from the bundle's envelope and profile, and, given ``served`` (the outputs a
    service served on these rows, by ONNX output name), those against the bundle's."""
    _check_thresholds(max_outside, max_psi, min_rows_psi)
    report = check(model, bundle_or_path, data, converter=converter, tolerance=tolerance,
                   atol=atol, rtol=rtol, data_name=data_name, provider=provider, search=False)
    report.kind = "recheck"
    envelope, profile = _recorded(bundle_or_path)
    prepared = converter.prepare(model, data)
    report.drift = drift(prepared, envelope, profile, max_outside=max_outside,
                         max_psi=max_psi, min_rows_psi=min_rows_psi)
    report.notes.append(
        f"recheck compared {report.rows} rows; thresholds: {report.drift.thresholds()}; no "
        "parity search runs in recheck (baton check searches beyond the data)")
    if served:
        report.served, notes = served_against(bundle_or_path, prepared, served, report.digest,
                                              served_digests, tolerance, atol, rtol, provider)
        report.notes += notes
    return report


def drift(prepared: Any, envelope: Envelope | None, profile: Profile | None, *,
          max_outside: float = MAX_OUTSIDE, max_psi: float = MAX_PSI,
          min_rows_psi: int = MIN_ROWS_PSI) -> DriftReport:
    """The drift of ``prepared`` (the data as the original takes it) from ``envelope``
    and ``profile``, column by column (the envelope's names)."""
    notes = []
    if envelope is None:
        notes.append("the bundle records no envelope (made by an older baton, or a bare "
                     ".onnx): the share of rows outside it is not available")
    if profile is None:
        notes.append("the bundle records no profile of its conversion sample (made by an "
                     "older baton, or a bare .onnx): PSI is not available; re-convert to "
                     "record one")
    cols = columns_of(prepared)
    rows = max((len(v) if np.ndim(v) else 1 for _, v in cols), default=0)
    few = rows < min_rows_psi or (profile is not None and profile.rows < min_rows_psi)
    if profile is not None and few:
        notes.append(
            f"PSI is reported but does not decide: {rows} rows here and {profile.rows} in the "
            f"conversion sample, fewer than {min_rows_psi} on a side (on n rows PSI's noise "
            "is about (bins - 1)/n); recheck on more rows")
    columns = []
    for name, values in cols:
        region = None if envelope is None else envelope.columns.get(name)
        prof = None if profile is None else profile.columns.get(name)
        if region is None and prof is None:
            continue
        n = len(values) if np.ndim(values) else 1
        col = ColumnDrift(name, region.kind if region is not None else (
            prof.kind if prof is not None else "?"), n, max_outside=max_outside,
            max_psi=max_psi)
        if region is not None:
            _outside(col, region, values)
        if prof is None:
            col.psi_note = "no profile" if profile is None else "not in the profile"
        elif prof.kind == "skipped":
            col.psi_note = f"not profiled: {prof.reason}"
        else:
            try:
                detail = profile.compare(name, values) if profile is not None else None
            except (TypeError, ValueError) as exc:
                col.psi_note = f"cannot be computed: {exc}"[:200]
            else:
                if detail is not None:
                    col.psi = detail.psi
                    col.psi_decides = not few
                    col.bins = [{"bin": b, "expected": round(e, 6), "count": c}
                                for b, e, c in zip(detail.labels, detail.expected,
                                                   detail.counts)]
        columns.append(col)
    return DriftReport(columns, rows, max_outside, max_psi, min_rows_psi,
                       None if profile is None else profile.rows, notes)


def _outside(col: ColumnDrift, region: Region, values: Any) -> None:
    """The rows of ``values`` outside ``region``, a few reasons, the unseen categories."""
    arr = values.to_numpy() if type(values).__module__.split(".")[0] == "pandas" else (
        np.asarray(values))
    flags = region.outside_rows(arr)
    col.outside = int(flags.sum())
    for i in np.flatnonzero(flags)[:EXAMPLES]:
        why = region.outside(arr[i])
        col.examples.append(f"row {int(i)}: {why}")
    if region.kind == "text" and region.categories is not None:
        cats = frozenset(region.categories)
        unseen = Counter(str(v) for v in np.asarray(arr, dtype=object).reshape(-1).tolist()
                         if not _missing(v) and str(v) not in cats)
        col.unseen_total = sum(unseen.values())
        col.unseen = {k[:80]: v for k, v in unseen.most_common(MAX_UNSEEN)}


def served_against(bundle_or_path: Any, prepared: Any, served: Mapping[str, Any],
                   digest: str | None, served_digests: Sequence[str],
                   tolerance: ToleranceArg = None, atol: float | None = None,
                   rtol: float | None = None, provider: str = "cpu"
                   ) -> tuple[list[OutputDiff], list[str]]:
    """The outputs served (by ONNX output name) against the bundle's on the same rows,
    within the bundle's tolerances (or the caller's); and notes."""
    others = sorted({d for d in served_digests if d and d != digest})
    if digest is not None and others and digest not in served_digests:
        return [], [f"the records were served by another bundle ({', '.join(others)}), not "
                    f"this one ({digest}): the outputs served are not compared with this "
                    "bundle's"]
    notes = []
    if others:
        notes.append(f"some records were served by another bundle ({', '.join(others)}); "
                     f"the outputs served are compared with this bundle's ({digest})")
    run, _ = run_settings(provider, False, False)
    target = open_target(bundle_or_path, run)
    actual = target.run(to_feeds(prepared, target.inputs))
    diffs = []
    for spec in target.outputs:
        if spec.name not in served:
            notes.append(f"the records hold no output {spec.name!r}: not compared")
            continue
        tol = with_overrides(resolve(tolerance, spec.name, target.tolerances), atol, rtol)
        mine, theirs = np.asarray(actual[spec.name]), np.asarray(served[spec.name])
        rows = _served_rows(theirs)
        if not rows.all():
            notes.append(f"{int((~rows).sum())} of {len(rows)} records hold no served "
                         f"{spec.name!r} (their requests asked for other outputs): compared "
                         "on the others")
        idx = np.flatnonzero(rows)
        theirs = theirs[idx]
        if theirs.dtype.kind in "fO" and mine.dtype.kind in "iub":
            theirs = theirs.astype(mine.dtype)  # the rows served, without their NaN/None
        diffs.append(compare(spec.name, spec.kind or "tensor", mine[idx], theirs, tol,
                             _rows_of(prepared, idx)))
    if diffs:
        notes.append("served: the outputs the service served, compared with the bundle's "
                     "on the same rows (original: the bundle; onnx: as served)")
    return diffs, notes


def _rows_of(prepared: Any, idx: np.ndarray) -> Callable[[int], dict[str, Any]]:
    """The inputs of row ``r`` of the rows ``idx`` of ``prepared``."""
    def row(r: int) -> dict[str, Any]:
        return row_values(prepared, int(idx[r]))
    return row


def _served_rows(values: np.ndarray) -> np.ndarray:
    """The rows of ``values`` that hold an output served (records mark the others NaN, or
    None in text and booleans)."""
    n = len(values) if values.ndim else 1
    flat = values.reshape(n, -1)
    if flat.shape[1] == 0:
        return np.ones(n, dtype=bool)
    if flat.dtype.kind == "O":
        return ~np.array([all(v is None for v in row) for row in flat.tolist()], dtype=bool)
    if flat.dtype.kind == "f":
        return ~np.isnan(flat).all(axis=1)
    return np.ones(n, dtype=bool)


def _recorded(bundle_or_path: Any) -> tuple[Envelope | None, Profile | None]:
    """The envelope and profile a bundle records (none for a bare .onnx)."""
    from baton.bundle import Bundle
    from baton.runtime import BundleFiles

    if isinstance(bundle_or_path, Bundle):
        manifest = bundle_or_path.typed_manifest
    else:
        path = Path(os.fspath(bundle_or_path))
        if path.suffix.lower() == ".onnx" and path.is_file():
            return None, None
        manifest = BundleFiles(path).manifest()
    return manifest.envelope, manifest.profile


def _check_thresholds(max_outside: float, max_psi: float, min_rows_psi: int) -> None:
    for name, v, ok in (("max_outside", max_outside, 0 <= max_outside <= 1),
                        ("max_psi", max_psi, max_psi >= 0),
                        ("min_rows_psi", min_rows_psi, min_rows_psi >= 0)):
        if not ok or v != v:
            raise UsageError(f"{name} = {v!r} is out of range",
                             expected="max_outside a share in [0, 1], max_psi >= 0, "
                             "min_rows_psi >= 0", found=repr(v),
                             hint="e.g. --max-outside 1% --max-psi 0.2")


# -- thresholds from the command line and the config file ---------------------------------


def parse_share(text: str | float, source: str) -> float:
    """A share: ``"1%"``, ``"0.01"`` or a number in [0, 1]."""
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        value = float("nan")
    if not 0 <= value <= 1:  # NaN fails too
        raise UsageError(f"cannot read {source} {text!r}", expected="a share: 1% or 0.01 "
                         "(between 0 and 1)", found=repr(text), hint=f"e.g. {source} 1%")
    return value


def _parse_psi(text: str | float, source: str) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        value = float("nan")
    if not value >= 0:
        raise UsageError(f"cannot read {source} {text!r}", expected="a PSI >= 0, e.g. 0.2",
                         found=repr(text), hint=f"e.g. {source} 0.2")
    return value


def thresholds(max_outside: str | None = None, max_psi: str | float | None = None,
               min_rows_psi: int | None = None, start: str | os.PathLike[str] | None = None
               ) -> tuple[float, float, int, Path | None]:
    """``(max_outside, max_psi, min_rows_psi, config file)``: the given values, else those
    of ``[tool.baton.recheck]`` (``max-outside``, ``max-psi``, ``min-rows-psi``) in the
    nearest baton.toml / pyproject.toml (found as the latency budgets are), else the
    defaults."""
    from baton.parity.latency.budgets import find_config

    table, path = find_config("recheck", start)
    if path is not None and not isinstance(table, dict):
        raise UsageError(f"[tool.baton.recheck] in {path} is not a table",
                         expected='[tool.baton.recheck] with max-outside = "1%", '
                         "max-psi = 0.2", found=repr(table)[:200], hint="fix the file")
    config: dict[str, Any] = {str(k).replace("_", "-"): v for k, v in (table or {}).items()}
    known = {"max-outside", "max-psi", "min-rows-psi"}
    unknown = sorted(set(config) - known)
    if unknown:
        raise UsageError(f"[tool.baton.recheck] in {path} has unknown keys",
                         expected=", ".join(sorted(known)), found=", ".join(unknown),
                         hint="fix the file")
    where = f"[tool.baton.recheck] in {path}"
    out = (parse_share(max_outside, "--max-outside") if max_outside is not None
           else parse_share(config["max-outside"], f"{where}: max-outside")
           if "max-outside" in config else MAX_OUTSIDE)
    psi = (_parse_psi(max_psi, "--max-psi") if max_psi is not None
           else _parse_psi(config["max-psi"], f"{where}: max-psi")
           if "max-psi" in config else MAX_PSI)
    rows = min_rows_psi if min_rows_psi is not None else config.get("min-rows-psi",
                                                                    MIN_ROWS_PSI)
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        raise UsageError(f"cannot read {where}: min-rows-psi {rows!r}",
                         expected="an integer >= 0", found=repr(rows), hint="e.g. 300")
    return out, psi, rows, path
